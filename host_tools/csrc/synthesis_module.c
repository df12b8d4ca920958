/* caed_host._synthesis: the CPython face of synthesis.c. numpy arrays in (any object with the
 * buffer protocol), the picture written into the caller's array; the GIL is released while the
 * kernel runs, so several streams decode in parallel. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "synthesis.h"

/* A C-contiguous float32 buffer of `ndim` dimensions, or a TypeError naming `what`. */
static int get_floats(PyObject *source, Py_buffer *view, int ndim, int writable, const char *what)
{
    if (PyObject_GetBuffer(source, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->ndim != ndim || view->itemsize != 4 || !view->format || strcmp(view->format, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-d float32 array", what, ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* synthesize(values, taps, bias, picture): fills picture (1, colours, H * block, W * block) from
 * values (C, H, W), taps (3, 3, C, outputs), bias (outputs), block = sqrt(outputs / colours). */
static PyObject *synthesize_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *values_obj, *taps_obj, *bias_obj, *picture_obj;
    if (!PyArg_ParseTuple(args, "OOOO:synthesize", &values_obj, &taps_obj, &bias_obj, &picture_obj))
        return NULL;
    Py_buffer values, taps, bias, picture;
    if (get_floats(values_obj, &values, 3, 0, "values (C, H, W)") < 0)
        return NULL;
    PyObject *result = NULL;
    if (get_floats(taps_obj, &taps, 4, 0, "taps (3, 3, C, outputs)") < 0)
        goto release_values;
    if (get_floats(bias_obj, &bias, 1, 0, "bias (outputs)") < 0)
        goto release_taps;
    if (get_floats(picture_obj, &picture, 4, 1, "picture (1, colours, H * block, W * block)") < 0)
        goto release_bias;
    const Py_ssize_t channels = values.shape[0], height = values.shape[1], width = values.shape[2];
    const Py_ssize_t outputs = bias.shape[0], colours = picture.shape[1];
    const Py_ssize_t block = height > 0 ? picture.shape[2] / height : 0;
    if (channels < 1 || height < 1 || width < 1 || colours < 1 || block < 1 || taps.shape[0] != 3 ||
        taps.shape[1] != 3 || taps.shape[2] != channels || taps.shape[3] != outputs || picture.shape[0] != 1 ||
        picture.shape[2] != height * block || picture.shape[3] != width * block ||
        outputs != colours * block * block) {
        PyErr_Format(PyExc_ValueError,
                     "synthesize: shapes do not fit: values (%zd, %zd, %zd), taps (%zd, %zd, %zd, %zd), bias (%zd), "
                     "picture (%zd, %zd, %zd, %zd); expected taps (3, 3, C, outputs), bias (outputs) and picture "
                     "(1, colours, H * block, W * block) with outputs = colours * block^2",
                     channels, height, width, taps.shape[0], taps.shape[1], taps.shape[2], taps.shape[3], outputs,
                     picture.shape[0], picture.shape[1], picture.shape[2], picture.shape[3]);
        goto release_picture;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = synthesis_run((const float *)values.buf, (size_t)channels, (size_t)height, (size_t)width,
                           (const float *)taps.buf, (const float *)bias.buf, (size_t)outputs, (size_t)block,
                           (float *)picture.buf);
    Py_END_ALLOW_THREADS
    if (status == SYNTHESIS_NO_MEMORY) {
        PyErr_NoMemory();
    } else if (status != SYNTHESIS_OK) {
        PyErr_Format(PyExc_ValueError, "synthesize: unsupported shape (outputs must be a multiple of %d)",
                     SYNTHESIS_OUTPUT_MULTIPLE);
    } else {
        result = Py_None;
        Py_INCREF(result);
    }
release_picture:
    PyBuffer_Release(&picture);
release_bias:
    PyBuffer_Release(&bias);
release_taps:
    PyBuffer_Release(&taps);
release_values:
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"synthesize", synthesize_py, METH_VARARGS,
     "synthesize(values, taps, bias, picture): picture = PixelShuffle(conv3x3(values)), from the non-zero values"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "caed_host._synthesis",
                                    "The decoder's sparse synthesis convolution (see caed_host.decoder).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__synthesis(void)
{
    return PyModule_Create(&module);
}
