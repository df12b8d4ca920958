/* caed._arith: the CPython face of arith.c. Buffers in, bytes out; the GIL is released while the
 * core codes, so the daemon's worker threads code frames in parallel. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "arith.h"

static PyObject *corrupt_payload; /* caed._arith.CorruptPayload, a ValueError */

static PyObject *raise_status(int status)
{
    if (status == ARITH_NO_MEMORY)
        return PyErr_NoMemory();
    PyErr_SetString(PyExc_ValueError, arith_strerror(status));
    return NULL;
}

/* encode(latents) -> bytes. `latents` is a 3-d int8 buffer (H, W, C) whose positions lie at one
 * stride (strides[0] == W * strides[1]): NHWC memory or a (C, H, W) planes view, read in place. */
static PyObject *arith_encode_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *source;
    if (!PyArg_ParseTuple(args, "O:encode", &source))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(source, &view, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return NULL;
    PyObject *result = NULL;
    if (view.ndim != 3 || view.itemsize != 1 || !view.format || strcmp(view.format, "b") != 0) {
        PyErr_SetString(PyExc_TypeError, "encode takes a 3-d int8 (H, W, C) buffer");
        goto done;
    }
    const size_t height = (size_t)view.shape[0], width = (size_t)view.shape[1], channels = (size_t)view.shape[2];
    if (view.shape[0] > 1 && view.strides[0] != view.shape[1] * view.strides[1]) {
        PyErr_SetString(PyExc_ValueError, "encode needs positions at one stride (strides[0] == W * strides[1])");
        goto done;
    }
    /* A first guess that fits every dct8 frame seen; the core reports the exact size otherwise. */
    size_t capacity = height * width * channels / 4 + 1024, written = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)capacity);
        if (!result)
            goto done;
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = arith_encode((const int8_t *)view.buf, view.strides[1], view.strides[2], height, width, channels,
                              (uint8_t *)PyBytes_AS_STRING(result), capacity, &written);
        Py_END_ALLOW_THREADS
        if (status == ARITH_OK) {
            _PyBytes_Resize(&result, (Py_ssize_t)written);
            goto done;
        }
        Py_CLEAR(result);
        if (status != ARITH_OUTPUT_FULL) {
            raise_status(status);
            goto done;
        }
        capacity = written;
    }
    PyErr_SetString(PyExc_RuntimeError, "arith encoder changed its output size between two runs");
done:
    PyBuffer_Release(&view);
    return result;
}

/* decode(payload, out, height, width, channels) -> None: fills `out`, a writable C-contiguous
 * buffer of H*W*C bytes, with the (C, H, W) planes, or raises CorruptPayload. */
static PyObject *arith_decode_py(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer payload, out;
    Py_ssize_t height, width, channels;
    if (!PyArg_ParseTuple(args, "y*w*nnn:decode", &payload, &out, &height, &width, &channels))
        return NULL;
    PyObject *result = NULL;
    if (height < 1 || width < 1 || channels < 1 || channels > ARITH_MAX_CHANNELS) {
        PyErr_SetString(PyExc_ValueError, "decode needs a shape of positive dimensions and at most 65535 channels");
        goto done;
    }
    if (width > PY_SSIZE_T_MAX / height || channels > PY_SSIZE_T_MAX / (height * width) ||
        !PyBuffer_IsContiguous(&out, 'C') || out.len != height * width * channels) {
        PyErr_SetString(PyExc_ValueError, "decode's output buffer must be C-contiguous and hold exactly H*W*C bytes");
        goto done;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = arith_decode((const uint8_t *)payload.buf, (size_t)payload.len, (size_t)height, (size_t)width,
                          (size_t)channels, (int8_t *)out.buf);
    Py_END_ALLOW_THREADS
    if (status == ARITH_OK) {
        result = Py_None;
        Py_INCREF(result);
    } else if (status == ARITH_NO_MEMORY || status == ARITH_BAD_SHAPE) {
        raise_status(status);
    } else {
        PyErr_SetString(corrupt_payload, arith_strerror(status));
    }
done:
    PyBuffer_Release(&payload);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", arith_encode_py, METH_VARARGS, "encode(latents) -> bytes: the arith payload of an int8 (H, W, C) buffer"},
    {"decode", arith_decode_py, METH_VARARGS,
     "decode(payload, out, height, width, channels): fill out with the (C, H, W) planes or raise CorruptPayload"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "caed._arith",
                                    "The arith payload codec's C core (see caed.codecs.arith).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__arith(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    corrupt_payload = PyErr_NewException("caed._arith.CorruptPayload", PyExc_ValueError, NULL);
    if (!corrupt_payload || PyModule_AddObject(m, "CorruptPayload", corrupt_payload) < 0) {
        Py_XDECREF(corrupt_payload);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(corrupt_payload);
    PyModule_AddIntConstant(m, "HEADER_BYTES", ARITH_HEADER_BYTES);
    return m;
}
