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

/* The arith_frame a call describes: `start` None or a buffer of arith_state_size() bytes (held in
 * *start_view, released by the caller when start_view->obj is set), and a fresh bytes object for
 * the end state. 0, or -1 with an exception set. */
static int frame_options(PyObject *start, int residual, Py_buffer *start_view, PyObject **end, arith_frame *frame)
{
    start_view->obj = NULL;
    frame->start = NULL;
    frame->residual = residual;
    if (start != Py_None) {
        if (PyObject_GetBuffer(start, start_view, PyBUF_SIMPLE) < 0)
            return -1;
        if ((size_t)start_view->len != arith_state_size()) {
            PyErr_Format(PyExc_ValueError, "a start state is %zu bytes, not %zd", arith_state_size(), start_view->len);
            PyBuffer_Release(start_view);
            start_view->obj = NULL;
            return -1;
        }
        frame->start = start_view->buf;
    }
    *end = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)arith_state_size());
    if (!*end) {
        if (start_view->obj)
            PyBuffer_Release(start_view);
        start_view->obj = NULL;
        return -1;
    }
    frame->end = PyBytes_AS_STRING(*end);
    return 0;
}

/* The payload of `source`, a 3-d int8 buffer (H, W, C) whose positions lie at one stride
 * (strides[0] == W * strides[1]): NHWC memory or a (C, H, W) planes view, read in place. */
static PyObject *encode_buffer(PyObject *source, const arith_frame *frame)
{
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
        status = arith_encode_frame((const int8_t *)view.buf, view.strides[1], view.strides[2], height, width,
                                    channels, frame, (uint8_t *)PyBytes_AS_STRING(result), capacity, &written);
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

/* encode(latents) -> bytes: a keyframe's payload. */
static PyObject *arith_encode_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *source;
    if (!PyArg_ParseTuple(args, "O:encode", &source))
        return NULL;
    return encode_buffer(source, NULL);
}

/* encode_frame(latents, start, residual) -> (payload, end state). */
static PyObject *arith_encode_frame_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *source, *start, *end = NULL;
    int residual;
    if (!PyArg_ParseTuple(args, "OOp:encode_frame", &source, &start, &residual))
        return NULL;
    Py_buffer start_view;
    arith_frame frame;
    if (frame_options(start, residual, &start_view, &end, &frame) < 0)
        return NULL;
    PyObject *payload = encode_buffer(source, &frame), *result = NULL;
    if (start_view.obj)
        PyBuffer_Release(&start_view);
    if (payload)
        result = PyTuple_Pack(2, payload, end);
    Py_XDECREF(payload);
    Py_DECREF(end);
    return result;
}

/* Decodes `payload` into `out`, a writable C-contiguous buffer of H*W*C bytes, as (C, H, W)
 * planes; Py_None, or NULL with CorruptPayload (or another error) set. */
static PyObject *decode_buffers(Py_buffer *payload, Py_buffer *out, Py_ssize_t height, Py_ssize_t width,
                                Py_ssize_t channels, const arith_frame *frame)
{
    if (height < 1 || width < 1 || channels < 1 || channels > ARITH_MAX_CHANNELS) {
        PyErr_SetString(PyExc_ValueError, "decode needs a shape of positive dimensions and at most 65535 channels");
        return NULL;
    }
    if (width > PY_SSIZE_T_MAX / height || channels > PY_SSIZE_T_MAX / (height * width) ||
        !PyBuffer_IsContiguous(out, 'C') || out->len != height * width * channels) {
        PyErr_SetString(PyExc_ValueError, "decode's output buffer must be C-contiguous and hold exactly H*W*C bytes");
        return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = arith_decode_frame((const uint8_t *)payload->buf, (size_t)payload->len, (size_t)height,
                                (size_t)width, (size_t)channels, frame, (int8_t *)out->buf);
    Py_END_ALLOW_THREADS
    if (status == ARITH_OK)
        Py_RETURN_NONE;
    if (status == ARITH_NO_MEMORY || status == ARITH_BAD_SHAPE || status == ARITH_BAD_STATE)
        return raise_status(status);
    PyErr_SetString(corrupt_payload, arith_strerror(status));
    return NULL;
}

/* decode(payload, out, height, width, channels) -> None: a keyframe's payload into `out`, or
 * CorruptPayload. */
static PyObject *arith_decode_py(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer payload, out;
    Py_ssize_t height, width, channels;
    if (!PyArg_ParseTuple(args, "y*w*nnn:decode", &payload, &out, &height, &width, &channels))
        return NULL;
    PyObject *result = decode_buffers(&payload, &out, height, width, channels, NULL);
    PyBuffer_Release(&payload);
    PyBuffer_Release(&out);
    return result;
}

/* decode_frame(payload, out, height, width, channels, start, residual) -> end state. */
static PyObject *arith_decode_frame_py(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer payload, out;
    Py_ssize_t height, width, channels;
    PyObject *start, *end = NULL;
    int residual;
    if (!PyArg_ParseTuple(args, "y*w*nnnOp:decode_frame", &payload, &out, &height, &width, &channels, &start,
                          &residual))
        return NULL;
    Py_buffer start_view;
    arith_frame frame;
    PyObject *result = NULL;
    if (frame_options(start, residual, &start_view, &end, &frame) == 0) {
        result = decode_buffers(&payload, &out, height, width, channels, &frame);
        if (start_view.obj)
            PyBuffer_Release(&start_view);
        if (result) {
            Py_DECREF(result);
            result = end;
        } else {
            Py_DECREF(end);
        }
    }
    PyBuffer_Release(&payload);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", arith_encode_py, METH_VARARGS, "encode(latents) -> bytes: the arith payload of an int8 (H, W, C) buffer"},
    {"decode", arith_decode_py, METH_VARARGS,
     "decode(payload, out, height, width, channels): fill out with the (C, H, W) planes or raise CorruptPayload"},
    {"encode_frame", arith_encode_frame_py, METH_VARARGS,
     "encode_frame(latents, start, residual) -> (payload, end state): a payload of the stream's temporal coding"},
    {"decode_frame", arith_decode_frame_py, METH_VARARGS,
     "decode_frame(payload, out, height, width, channels, start, residual) -> end state"},
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
    PyModule_AddIntConstant(m, "STATE_BYTES", (long)arith_state_size());
    return m;
}
