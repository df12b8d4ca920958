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

/* Buffers a call holds while it codes, each released when its obj is set. */
typedef struct {
    Py_buffer start, reference, sent;
} held_buffers;

static void release_held(held_buffers *held)
{
    if (held->start.obj)
        PyBuffer_Release(&held->start);
    if (held->reference.obj)
        PyBuffer_Release(&held->reference);
    if (held->sent.obj)
        PyBuffer_Release(&held->sent);
    held->start.obj = held->reference.obj = held->sent.obj = NULL;
}

/* The arith_frame a call describes: `start` None or a buffer of arith_state_size() bytes,
 * `reference` None or a C-contiguous int16 buffer, `sent` None or a C-contiguous buffer of bytes
 * (writable when decoding; both sizes are checked against the tensor's by buffers_fit), all held in
 * *held; and a fresh bytes object for the end state. 0, or -1 with an exception set and nothing
 * held. */
static int frame_options(PyObject *start, int residual, PyObject *reference, int reference_shift, PyObject *sent,
                         int writable, held_buffers *held, PyObject **end, arith_frame *frame)
{
    Py_buffer *start_view = &held->start;
    held->start.obj = held->reference.obj = held->sent.obj = NULL;
    frame->start = NULL;
    frame->residual = residual;
    frame->reference = NULL;
    frame->reference_shift = 0;
    frame->sent = NULL;
    if (sent != Py_None) {
        if (PyObject_GetBuffer(sent, &held->sent, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
            return -1;
        if (held->sent.itemsize != 1) {
            PyErr_SetString(PyExc_TypeError, "sent flags are a C-contiguous buffer of H*W bytes (uint8 or bool)");
            release_held(held);
            return -1;
        }
        frame->sent = (uint8_t *)held->sent.buf;
    }
    if (reference != Py_None) {
        if (reference_shift < 0 || reference_shift > ARITH_MAX_SHIFT) {
            PyErr_Format(PyExc_ValueError, "reference_shift must be 0..%d, got %d", ARITH_MAX_SHIFT, reference_shift);
            release_held(held);
            return -1;
        }
        if (PyObject_GetBuffer(reference, &held->reference, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            release_held(held);
            return -1;
        }
        if (held->reference.itemsize != 2 || !held->reference.format || strcmp(held->reference.format, "h") != 0) {
            PyErr_SetString(PyExc_TypeError, "a reference is a C-contiguous int16 (H, W, C) buffer");
            release_held(held);
            return -1;
        }
        frame->reference = (const int16_t *)held->reference.buf;
        frame->reference_shift = (unsigned)reference_shift;
    }
    if (start != Py_None) {
        if (PyObject_GetBuffer(start, start_view, PyBUF_SIMPLE) < 0) {
            release_held(held);
            return -1;
        }
        if ((size_t)start_view->len != arith_state_size()) {
            PyErr_Format(PyExc_ValueError, "a start state is %zu bytes, not %zd", arith_state_size(), start_view->len);
            release_held(held);
            return -1;
        }
        frame->start = start_view->buf;
    }
    *end = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)arith_state_size());
    if (!*end) {
        release_held(held);
        return -1;
    }
    frame->end = PyBytes_AS_STRING(*end);
    return 0;
}

/* 0 if the frame's reference (if any) holds exactly one int16 per value of an H x W x C tensor and
 * its sent flags (if any) one byte per position, else -1 with ValueError set. */
static int buffers_fit(const held_buffers *held, size_t height, size_t width, size_t channels)
{
    if (held && held->reference.obj && (size_t)held->reference.len / 2 != height * width * channels) {
        PyErr_Format(PyExc_ValueError, "the reference holds %zd values, the tensor %zu", held->reference.len / 2,
                     height * width * channels);
        return -1;
    }
    if (held && held->sent.obj && (size_t)held->sent.len != height * width) {
        PyErr_Format(PyExc_ValueError, "the sent flags are %zd bytes, the tensor has %zu positions", held->sent.len,
                     height * width);
        return -1;
    }
    return 0;
}

/* The payload of `source`, a 3-d int8 buffer (H, W, C) whose positions lie at one stride
 * (strides[0] == W * strides[1]): NHWC memory or a (C, H, W) planes view, read in place. */
static PyObject *encode_buffer(PyObject *source, const arith_frame *frame, const held_buffers *held)
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
    if (buffers_fit(held, height, width, channels) < 0)
        goto done;
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
    return encode_buffer(source, NULL, NULL);
}

/* encode_frame(latents, start, residual, reference=None, reference_shift=0, sent=None) -> (payload, end state). */
static PyObject *arith_encode_frame_py(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *source, *start, *reference = Py_None, *sent = Py_None, *end = NULL;
    int residual, reference_shift = 0;
    if (!PyArg_ParseTuple(args, "OOp|OiO:encode_frame", &source, &start, &residual, &reference, &reference_shift, &sent))
        return NULL;
    held_buffers held;
    arith_frame frame;
    if (frame_options(start, residual, reference, reference_shift, sent, 0, &held, &end, &frame) < 0)
        return NULL;
    PyObject *payload = encode_buffer(source, &frame, &held), *result = NULL;
    release_held(&held);
    if (payload)
        result = PyTuple_Pack(2, payload, end);
    Py_XDECREF(payload);
    Py_DECREF(end);
    return result;
}

/* Decodes `payload` into `out`, a writable C-contiguous buffer of H*W*C bytes, as (C, H, W)
 * planes; Py_None, or NULL with CorruptPayload (or another error) set. */
static PyObject *decode_buffers(Py_buffer *payload, Py_buffer *out, Py_ssize_t height, Py_ssize_t width,
                                Py_ssize_t channels, const arith_frame *frame, const held_buffers *held)
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
    if (buffers_fit(held, (size_t)height, (size_t)width, (size_t)channels) < 0)
        return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = arith_decode_frame((const uint8_t *)payload->buf, (size_t)payload->len, (size_t)height,
                                (size_t)width, (size_t)channels, frame, (int8_t *)out->buf);
    Py_END_ALLOW_THREADS
    if (status == ARITH_OK)
        Py_RETURN_NONE;
    if (status == ARITH_NO_MEMORY || status == ARITH_BAD_SHAPE || status == ARITH_BAD_STATE || status == ARITH_BAD_SHIFT)
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
    PyObject *result = decode_buffers(&payload, &out, height, width, channels, NULL, NULL);
    PyBuffer_Release(&payload);
    PyBuffer_Release(&out);
    return result;
}

/* decode_frame(payload, out, height, width, channels, start, residual, reference=None,
 * reference_shift=0, sent=None) -> end state; `sent`, a writable buffer of H*W bytes, receives the
 * positions' flags of a payload that codes them. */
static PyObject *arith_decode_frame_py(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer payload, out;
    Py_ssize_t height, width, channels;
    PyObject *start, *reference = Py_None, *sent = Py_None, *end = NULL;
    int residual, reference_shift = 0;
    if (!PyArg_ParseTuple(args, "y*w*nnnOp|OiO:decode_frame", &payload, &out, &height, &width, &channels, &start,
                          &residual, &reference, &reference_shift, &sent))
        return NULL;
    held_buffers held;
    arith_frame frame;
    PyObject *result = NULL;
    if (frame_options(start, residual, reference, reference_shift, sent, 1, &held, &end, &frame) == 0) {
        result = decode_buffers(&payload, &out, height, width, channels, &frame, &held);
        release_held(&held);
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
     "encode_frame(latents, start, residual, reference=None, reference_shift=0, sent=None) -> (payload, end state): "
     "a payload of the stream's temporal coding"},
    {"decode_frame", arith_decode_frame_py, METH_VARARGS,
     "decode_frame(payload, out, height, width, channels, start, residual, reference=None, reference_shift=0, "
     "sent=None) -> end state"},
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
    PyModule_AddIntConstant(m, "MAX_REFERENCE_SHIFT", ARITH_MAX_SHIFT);
    return m;
}
