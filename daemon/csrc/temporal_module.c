/* caed._temporal: the CPython face of temporal.c. numpy arrays in, results written into the
 * caller's arrays; the GIL is released while a pass runs, so the daemon's worker threads code their
 * streams in parallel. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "temporal.h"

/* A C-contiguous buffer of `ndim` dimensions whose struct format is one of the characters of
 * `formats` ("b" int8, "h" int16, "i" int32, "ql" int64, "d" float64), or a TypeError naming `what`. */
static int get_array(PyObject *source, Py_buffer *view, int ndim, const char *formats, Py_ssize_t itemsize,
                     int writable, const char *what)
{
    if (PyObject_GetBuffer(source, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@')
        f++;
    if (view->ndim != ndim || view->itemsize != itemsize || f[0] == '\0' || f[1] != '\0' || !strchr(formats, f[0])) {
        PyErr_Format(PyExc_TypeError, "%s", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Whether two held buffers share memory: the passes read their inputs and write their outputs as
 * distinct arrays (restrict), so an output may not be an input or another output. */
static int overlap(const Py_buffer *a, const Py_buffer *b)
{
    if (!a->obj || !b->obj)
        return 0;
    const char *a0 = a->buf, *b0 = b->buf;
    return a0 < b0 + b->len && b0 < a0 + a->len;
}

/* 0 if no two of the `count` buffers overlap, else -1 with ValueError set. */
static int distinct(const char *function, const Py_buffer *const *buffers, int count)
{
    for (int i = 0; i < count; i++)
        for (int j = i + 1; j < count; j++)
            if (overlap(buffers[i], buffers[j])) {
                PyErr_Format(PyExc_ValueError, "%s: an output shares memory with another array", function);
                return -1;
            }
    return 0;
}

/* block_errors(latents, reference, frame_steps, last_steps, coarse, errors, nonzero): see
 * temporal.h. latents int8 (P, C), reference int16 (P, C), coarse int8 (P, C) or None at frame_steps
 * 0, errors float64 (P,), nonzero int32 (P,). */
static PyObject *block_errors_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *latents_obj, *reference_obj, *coarse_obj, *errors_obj, *nonzero_obj;
    int frame_steps, last_steps;
    if (!PyArg_ParseTuple(args, "OOiiOOO:block_errors", &latents_obj, &reference_obj, &frame_steps, &last_steps,
                          &coarse_obj, &errors_obj, &nonzero_obj))
        return NULL;
    if (frame_steps < 0 || frame_steps > TEMPORAL_MAX_STEPS || last_steps < 0 || last_steps > TEMPORAL_MAX_STEPS) {
        PyErr_Format(PyExc_ValueError, "block_errors: frame_steps and last_steps must be 0..%d, got %d and %d",
                     TEMPORAL_MAX_STEPS, frame_steps, last_steps);
        return NULL;
    }
    Py_buffer latents, reference, coarse, errors, nonzero;
    PyObject *result = NULL;
    if (get_array(latents_obj, &latents, 2, "b", 1, 0, "latents must be a C-contiguous int8 (positions, C) array") < 0)
        return NULL;
    if (get_array(reference_obj, &reference, 2, "h", 2, 0,
                  "reference must be a C-contiguous int16 (positions, C) array") < 0)
        goto release_latents;
    coarse.obj = NULL;
    if (coarse_obj == Py_None) {
        if (frame_steps > 0) {
            PyErr_SetString(PyExc_TypeError, "block_errors: coarse is needed below the model's grid (frame_steps > 0)");
            goto release_reference;
        }
    } else if (get_array(coarse_obj, &coarse, 2, "b", 1, 1,
                         "coarse must be a writable C-contiguous int8 (positions, C) array") < 0) {
        goto release_reference;
    }
    if (get_array(errors_obj, &errors, 1, "d", 8, 1, "errors must be a writable C-contiguous float64 (positions,) array") < 0)
        goto release_coarse;
    if (get_array(nonzero_obj, &nonzero, 1, "i", 4, 1, "nonzero must be a writable C-contiguous int32 (positions,) array") < 0)
        goto release_errors;
    const Py_ssize_t positions = latents.shape[0], channels = latents.shape[1];
    if (reference.shape[0] != positions || reference.shape[1] != channels ||
        (coarse.obj && (coarse.shape[0] != positions || coarse.shape[1] != channels)) ||
        errors.shape[0] != positions || nonzero.shape[0] != positions) {
        PyErr_Format(PyExc_ValueError,
                     "block_errors: shapes differ: latents (%zd, %zd), reference (%zd, %zd), coarse (%zd, %zd), "
                     "errors (%zd,), nonzero (%zd,)",
                     positions, channels, reference.shape[0], reference.shape[1], coarse.obj ? coarse.shape[0] : 0,
                     coarse.obj ? coarse.shape[1] : 0, errors.shape[0], nonzero.shape[0]);
        goto release_nonzero;
    }
    const Py_buffer *const all[] = {&latents, &reference, &coarse, &errors, &nonzero};
    if (distinct("block_errors", all, 5) < 0)
        goto release_nonzero;
    Py_BEGIN_ALLOW_THREADS
    temporal_block_errors((const int8_t *)latents.buf, (const int16_t *)reference.buf, (size_t)positions,
                          (size_t)channels, (unsigned)frame_steps, (unsigned)last_steps,
                          coarse.obj ? (int8_t *)coarse.buf : NULL,
                          (double *)errors.buf, (int32_t *)nonzero.buf);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
release_nonzero:
    PyBuffer_Release(&nonzero);
release_errors:
    PyBuffer_Release(&errors);
release_coarse:
    if (coarse.obj)
        PyBuffer_Release(&coarse);
release_reference:
    PyBuffer_Release(&reference);
release_latents:
    PyBuffer_Release(&latents);
    return result;
}

/* sent_blocks(latents, reference, target, rows, steps, base, residual, left): see temporal.h.
 * latents int8 (P, C), reference int16 (P, C), target int8 (P, C) or None at steps 0, rows int64
 * (n,), base int16 (n, C), residual int8 (n, C), left float64 (n,) or None at steps 0. */
static PyObject *sent_blocks_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *latents_obj, *reference_obj, *target_obj, *rows_obj, *base_obj, *residual_obj, *left_obj;
    int steps;
    if (!PyArg_ParseTuple(args, "OOOOiOOO:sent_blocks", &latents_obj, &reference_obj, &target_obj, &rows_obj, &steps,
                          &base_obj, &residual_obj, &left_obj))
        return NULL;
    if (steps < 0 || steps > TEMPORAL_MAX_STEPS) {
        PyErr_Format(PyExc_ValueError, "sent_blocks: steps must be 0..%d, got %d", TEMPORAL_MAX_STEPS, steps);
        return NULL;
    }
    if ((target_obj == Py_None || left_obj == Py_None) != (steps == 0)) {
        PyErr_SetString(PyExc_TypeError, "sent_blocks: target and left are given below the model's grid (steps > 0) "
                                         "and None at it");
        return NULL;
    }
    Py_buffer latents, reference, target, rows, base, residual, left;
    PyObject *result = NULL;
    target.obj = left.obj = NULL;
    if (get_array(latents_obj, &latents, 2, "b", 1, 0, "latents must be a C-contiguous int8 (positions, C) array") < 0)
        return NULL;
    if (get_array(reference_obj, &reference, 2, "h", 2, 0,
                  "reference must be a C-contiguous int16 (positions, C) array") < 0)
        goto release_latents;
    if (steps && get_array(target_obj, &target, 2, "b", 1, 0, "target must be a C-contiguous int8 (positions, C) array") < 0)
        goto release_reference;
    if (get_array(rows_obj, &rows, 1, "ql", 8, 0, "rows must be a C-contiguous int64 (n,) array") < 0)
        goto release_target;
    if (get_array(base_obj, &base, 2, "h", 2, 1, "base must be a writable C-contiguous int16 (n, C) array") < 0)
        goto release_rows;
    if (get_array(residual_obj, &residual, 2, "b", 1, 1, "residual must be a writable C-contiguous int8 (n, C) array") < 0)
        goto release_base;
    if (steps && get_array(left_obj, &left, 1, "d", 8, 1, "left must be a writable C-contiguous float64 (n,) array") < 0)
        goto release_residual;
    const Py_ssize_t positions = latents.shape[0], channels = latents.shape[1], count = rows.shape[0];
    if (reference.shape[0] != positions || reference.shape[1] != channels ||
        (target.obj && (target.shape[0] != positions || target.shape[1] != channels)) || base.shape[0] != count ||
        base.shape[1] != channels || residual.shape[0] != count || residual.shape[1] != channels ||
        (left.obj && left.shape[0] != count)) {
        PyErr_Format(PyExc_ValueError,
                     "sent_blocks: shapes differ: latents (%zd, %zd), reference (%zd, %zd), rows (%zd,), base (%zd, %zd), "
                     "residual (%zd, %zd)",
                     positions, channels, reference.shape[0], reference.shape[1], count, base.shape[0], base.shape[1],
                     residual.shape[0], residual.shape[1]);
        goto release_left;
    }
    const Py_buffer *const all[] = {&latents, &reference, &target, &rows, &base, &residual, &left};
    if (distinct("sent_blocks", all, 7) < 0)
        goto release_left;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = temporal_sent_blocks((const int8_t *)latents.buf, (const int16_t *)reference.buf,
                                  target.obj ? (const int8_t *)target.buf : NULL, (size_t)positions, (size_t)channels,
                                  (const int64_t *)rows.buf, (size_t)count, (unsigned)steps, (int16_t *)base.buf,
                                  (int8_t *)residual.buf, left.obj ? (double *)left.buf : NULL);
    Py_END_ALLOW_THREADS
    if (status == TEMPORAL_BAD_ROW) {
        PyErr_Format(PyExc_ValueError, "sent_blocks: a row is outside 0..%zd", positions - 1);
    } else {
        result = Py_None;
        Py_INCREF(result);
    }
release_left:
    if (left.obj)
        PyBuffer_Release(&left);
release_residual:
    PyBuffer_Release(&residual);
release_base:
    PyBuffer_Release(&base);
release_rows:
    PyBuffer_Release(&rows);
release_target:
    if (target.obj)
        PyBuffer_Release(&target);
release_reference:
    PyBuffer_Release(&reference);
release_latents:
    PyBuffer_Release(&latents);
    return result;
}

static PyMethodDef methods[] = {
    {"block_errors", block_errors_py, METH_VARARGS,
     "block_errors(latents, reference, frame_steps, last_steps, coarse, errors, nonzero): every block's "
     "values on the frame's grid, the squared error skipping it leaves, and its non-zero count"},
    {"sent_blocks", sent_blocks_py, METH_VARARGS,
     "sent_blocks(latents, reference, target, rows, steps, base, residual, left): the sent blocks' reference on "
     "the frame's grid, their residuals (with the dead zone below the model's grid) and the error sending leaves"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "caed._temporal",
                                    "The temporal encoder's block passes (see caed.temporal).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__temporal(void)
{
    PyObject *m = PyModule_Create(&module), *offset = PyFloat_FromDouble(1.0 / 3.0); /* the dead zone's, temporal.h */
    if (!m || !offset || PyModule_AddIntConstant(m, "MAX_STEPS", TEMPORAL_MAX_STEPS) < 0 ||
        PyModule_AddObjectRef(m, "DEAD_ZONE_OFFSET", offset) < 0) {
        Py_XDECREF(offset);
        Py_XDECREF(m);
        return NULL;
    }
    Py_DECREF(offset);
    return m;
}
