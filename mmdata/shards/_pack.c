/* mmdata.shards._pack: the per-file inner loops of `mmdata shard`, in C.
 *
 * Sharding many small files is made of per-file costs: open + fstat + read + close, a tar header,
 * a copy. In Python each of those costs about a microsecond of interpreter time on top of the
 * system call; here they cost the system call. Both functions are optional accelerators: the
 * pure-Python code in tarwrite.py / sources.py produces the same bytes, and is used when this module
 * did not build (mmdata.shards.tarwrite.ACCELERATED says which). tests/shards/test_pack.py checks
 * that both paths agree byte for byte.
 *
 *   read_files(paths) -> (datas, meta): datas[i] is the bytes of paths[i] or None when it could not
 *       be read; meta packs two native int64 per path: (size, mtime_ns), or (-1, errno).
 *       Files under 64 KiB are read in one pass without the GIL (the shard's sha256 thread runs
 *       meanwhile), larger ones straight into their bytes object, the GIL released around each read.
 *   list_dir(path) -> (files, folders): sorted names of a folder's regular files and sub-folders
 *       (symbolic links followed, like os.scandir's is_file / is_dir), without a DirEntry each.
 *   sample_stats(plan, datas) -> (height, width, seconds, rate, chars) | None
 *       The index columns mmdata.shards.mediainfo would give for PNG / JPEG images, FLAC / WAV
 *       audio and ASCII text (seconds unrounded); None for anything else, left to the Python code.
 *   assemble(records, layouts, got) -> (names, datas, sizes, counts, stats) | None
 *       The per-sample loop of the shard writer for a chunk: member names (key + suffix), payloads
 *       (inline bytes or the next read file), sizes, members per sample and sample_stats (seconds
 *       rounded like the index). None when any file is unreadable or any header is not one the C
 *       parsers cover: the Python loop then handles the chunk, with its skip / raise rules.
 *   tar_members(names, datas, big=16384) -> list[bytes] | None
 *       The ustar members (512-byte header, data, zero padding to 512) of every (name, data) pair,
 *       as parts to write in order: runs of headers, small payloads and padding are laid out in
 *       new bytes objects; payloads of `big` bytes or more are returned as they are (no copy).
 *       Headers are those of mmdata.shards.tarwrite.member_header (mode 0644, uid/gid 0, mtime 0,
 *       empty user/group). None when a name is not ASCII, empty or >= 100 bytes, contains "..",
 *       starts with "/", or a size does not fit ustar: the caller then uses the Python writer
 *       (PAX headers, and the refusal of escaping names).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#define BLOCK 512

/* Read one file into a new bytes object; on failure returns NULL with *err set (no Python error). */
static PyObject *read_one(const char *path, long long *mtime_ns, int *err) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = fd < 0 ? -1 : fstat(fd, &st);
    if (fd < 0 || rc < 0) {
        *err = errno;
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        *err = EISDIR;
        return NULL;
    }
#if defined(__APPLE__)
    *mtime_ns = (long long)st.st_mtimespec.tv_sec * 1000000000LL + st.st_mtimespec.tv_nsec;
#else
    *mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
#endif
    /* one extra byte: getting st_size bytes back and then EOF is the common case, in one read */
    Py_ssize_t cap = (Py_ssize_t)st.st_size + 1, got = 0;
    PyObject *buf = PyBytes_FromStringAndSize(NULL, cap);
    if (buf == NULL) {
        close(fd);
        *err = ENOMEM;
        return NULL;
    }
    for (;;) {
        ssize_t n;
        char *dst = PyBytes_AS_STRING(buf) + got;
        size_t want = (size_t)(cap - got);
        if (want >= (1 << 16)) {
            Py_BEGIN_ALLOW_THREADS
            n = read(fd, dst, want);
            Py_END_ALLOW_THREADS
        } else {
            n = read(fd, dst, want);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            *err = errno;
            Py_DECREF(buf);
            close(fd);
            return NULL;
        }
        if (n == 0) break;
        got += n;
        if (got == (Py_ssize_t)st.st_size && (size_t)n < want) break; /* all fstat promised, then EOF */
        if (got == cap) { /* the file grew since fstat: make room and go on */
            cap *= 2;
            if (_PyBytes_Resize(&buf, cap) < 0) {
                PyErr_Clear();
                close(fd);
                *err = ENOMEM;
                return NULL;
            }
        }
    }
    close(fd);
    if (_PyBytes_Resize(&buf, got) < 0) {
        PyErr_Clear();
        *err = ENOMEM;
        return NULL;
    }
    return buf;
}

#define SMALL_FILE (1 << 16)

typedef struct {
    const char *path;
    char *buf;      /* malloc'd contents of a small file, or NULL */
    Py_ssize_t len;
    long long mtime;
    int err;        /* errno, or -1: large file, read in the second pass */
} slot_t;

/* Without the GIL: open, fstat, read and close every small file into malloc'd buffers. The sha256
 * thread of the shard being written runs meanwhile. Large files are left for the second pass. */
static void read_small(slot_t *slots, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        slot_t *s = &slots[i];
        struct stat st;
        int fd = open(s->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
            s->err = errno;
            if (fd >= 0) close(fd);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            s->err = EISDIR;
            close(fd);
            continue;
        }
        if (!S_ISREG(st.st_mode) || st.st_size >= SMALL_FILE) {
            s->err = -1;
            close(fd);
            continue;
        }
#if defined(__APPLE__)
        s->mtime = (long long)st.st_mtimespec.tv_sec * 1000000000LL + st.st_mtimespec.tv_nsec;
#else
        s->mtime = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
#endif
        Py_ssize_t cap = (Py_ssize_t)st.st_size + 1, got = 0;
        char *buf = malloc(cap);
        if (buf == NULL) {
            s->err = ENOMEM;
            close(fd);
            continue;
        }
        for (;;) {
            ssize_t r = read(fd, buf + got, (size_t)(cap - got));
            if (r < 0) {
                if (errno == EINTR) continue;
                s->err = errno;
                break;
            }
            if (r == 0) break;
            got += r;
            if (got == (Py_ssize_t)st.st_size && got < cap) break; /* all fstat promised: EOF */
            if (got == cap) { /* grew since fstat: the second pass reads it whole */
                s->err = -1;
                break;
            }
        }
        close(fd);
        if (s->err != 0) {
            free(buf);
            continue;
        }
        s->buf = buf;
        s->len = got;
    }
}

static PyObject *read_files(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "read_files expects a sequence of paths");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = NULL;
    PyObject **encoded = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
    slot_t *slots = PyMem_Calloc(n ? n : 1, sizeof(slot_t));
    if (encoded == NULL || slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(seq, i), &encoded[i])) goto done;
        slots[i].path = PyBytes_AS_STRING(encoded[i]);
    }
    Py_BEGIN_ALLOW_THREADS
    read_small(slots, n);
    Py_END_ALLOW_THREADS
    PyObject *datas = PyList_New(n);
    PyObject *meta = PyBytes_FromStringAndSize(NULL, 2 * n * (Py_ssize_t)sizeof(long long));
    if (datas == NULL || meta == NULL) {
        Py_XDECREF(datas);
        Py_XDECREF(meta);
        goto done;
    }
    long long *m = (long long *)PyBytes_AS_STRING(meta);
    for (Py_ssize_t i = 0; i < n; i++) {
        slot_t *s = &slots[i];
        PyObject *data = NULL;
        if (s->buf != NULL) {
            data = PyBytes_FromStringAndSize(s->buf, s->len);
            free(s->buf);
            s->buf = NULL;
            m[2 * i + 1] = s->mtime;
        } else if (s->err == -1) {
            long long mtime = 0;
            int err = 0;
            data = read_one(s->path, &mtime, &err);
            if (data == NULL && !PyErr_Occurred()) s->err = err;
            m[2 * i + 1] = data != NULL ? mtime : err;
        } else {
            m[2 * i + 1] = s->err;
        }
        if (data == NULL && PyErr_Occurred()) {
            Py_DECREF(datas);
            Py_DECREF(meta);
            goto done;
        }
        m[2 * i] = data != NULL ? PyBytes_GET_SIZE(data) : -1;
        PyList_SET_ITEM(datas, i, data != NULL ? data : Py_NewRef(Py_None));
    }
    out = PyTuple_Pack(2, datas, meta);
    Py_DECREF(datas);
    Py_DECREF(meta);
done:
    if (slots != NULL)
        for (Py_ssize_t i = 0; i < n; i++) free(slots[i].buf);
    if (encoded != NULL)
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(encoded[i]);
    PyMem_Free(slots);
    PyMem_Free(encoded);
    Py_DECREF(seq);
    return out;
}

static unsigned char TEMPLATE[BLOCK];
static unsigned long TEMPLATE_SUM; /* sum of the template with the checksum field as 8 spaces */

static void init_template(void) {
    memset(TEMPLATE, 0, BLOCK);
    memcpy(TEMPLATE + 100, "0000644", 8);      /* mode */
    memcpy(TEMPLATE + 108, "0000000", 8);      /* uid */
    memcpy(TEMPLATE + 116, "0000000", 8);      /* gid */
    memcpy(TEMPLATE + 136, "00000000000", 12); /* mtime */
    TEMPLATE[156] = '0';                       /* typeflag: regular file */
    memcpy(TEMPLATE + 257, "ustar", 6);        /* magic + NUL */
    memcpy(TEMPLATE + 263, "00", 2);           /* version */
    TEMPLATE_SUM = 8 * ' ';
    for (int i = 0; i < BLOCK; i++)
        if (i < 148 || i >= 156) TEMPLATE_SUM += TEMPLATE[i];
}

static void write_header(unsigned char *p, const unsigned char *raw, Py_ssize_t len, Py_ssize_t size) {
    memcpy(p, TEMPLATE, BLOCK);
    memcpy(p, raw, len);
    char digits[16];
    snprintf(digits, sizeof digits, "%011llo", (unsigned long long)size);
    memcpy(p + 124, digits, 11);
    unsigned long sum = TEMPLATE_SUM;
    for (Py_ssize_t j = 0; j < len; j++) sum += raw[j];
    for (int j = 0; j < 11; j++) sum += (unsigned char)digits[j]; /* the template has zeros there */
    char chk[8];
    snprintf(chk, sizeof chk, "%06lo", sum);
    memcpy(p + 148, chk, 6);
    p[154] = 0;
    p[155] = ' ';
}

static PyObject *tar_members(PyObject *self, PyObject *args) {
    PyObject *names_arg, *datas_arg;
    Py_ssize_t big = 1 << 14;
    if (!PyArg_ParseTuple(args, "OO|n:tar_members", &names_arg, &datas_arg, &big)) return NULL;
    PyObject *names = PySequence_Fast(names_arg, "tar_members expects a sequence of names");
    if (names == NULL) return NULL;
    PyObject *datas = PySequence_Fast(datas_arg, "tar_members expects a sequence of bytes");
    if (datas == NULL) {
        Py_DECREF(names);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(names);
    if (PySequence_Fast_GET_SIZE(datas) != n) {
        PyErr_SetString(PyExc_ValueError, "tar_members: names and datas differ in length");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(names, i), *data = PySequence_Fast_GET_ITEM(datas, i);
        if (!PyUnicode_Check(name) || !PyBytes_Check(data)) {
            PyErr_SetString(PyExc_TypeError, "tar_members: names must be str and datas bytes");
            goto done;
        }
        const char *raw = (const char *)PyUnicode_DATA(name);
        if (!PyUnicode_IS_ASCII(name) || PyUnicode_GET_LENGTH(name) >= 100 || PyUnicode_GET_LENGTH(name) == 0 ||
            PyBytes_GET_SIZE(data) >= 077777777777LL || raw[0] == '/' || strstr(raw, "..") != NULL) {
            /* a PAX header, or a name to check (and maybe refuse): the Python writer handles it */
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    result = PyList_New(0);
    if (result == NULL) goto done;
    Py_ssize_t i = 0, carry = 0; /* carry: padding of the previous big member, owed to the next run */
    while (i < n || carry) {
        /* one run: the carried padding, whole small members, then the header of a big one */
        Py_ssize_t run = carry, j = i;
        for (; j < n; j++) {
            Py_ssize_t size = PyBytes_GET_SIZE(PySequence_Fast_GET_ITEM(datas, j));
            run += BLOCK;
            if (size >= big) break;
            run += size + (-size & (BLOCK - 1));
        }
        PyObject *chunk = PyBytes_FromStringAndSize(NULL, run);
        if (chunk == NULL || PyList_Append(result, chunk) < 0) {
            Py_XDECREF(chunk);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(chunk);
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(chunk);
        memset(p, 0, carry);
        p += carry;
        carry = 0;
        for (; i < n; i++) {
            PyObject *name = PySequence_Fast_GET_ITEM(names, i), *data = PySequence_Fast_GET_ITEM(datas, i);
            Py_ssize_t size = PyBytes_GET_SIZE(data);
            write_header(p, PyUnicode_1BYTE_DATA(name), PyUnicode_GET_LENGTH(name), size);
            p += BLOCK;
            if (size >= big) { /* the payload goes out as its own part, uncopied */
                if (PyList_Append(result, data) < 0) {
                    Py_CLEAR(result);
                    goto done;
                }
                carry = -size & (BLOCK - 1);
                i++;
                break;
            }
            memcpy(p, PyBytes_AS_STRING(data), size);
            p += size;
            Py_ssize_t pad = -size & (BLOCK - 1);
            memset(p, 0, pad);
            p += pad;
        }
    }
done:
    Py_DECREF(names);
    Py_DECREF(datas);
    return result;
}

/* ---- sample_stats: the index columns of one sample from its members' headers ---- */

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long be32(const unsigned char *p) {
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}
static unsigned long le32(const unsigned char *p) {
    return (unsigned long)p[3] << 24 | (unsigned long)p[2] << 16 | (unsigned long)p[1] << 8 | p[0];
}

/* (height, width) of a PNG or baseline/progressive JPEG; 0 when not one of those or malformed */
static int image_hw(const unsigned char *d, Py_ssize_t n, long *h, long *w) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 24 && memcmp(d, png, 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0) {
        *w = (long)be32(d + 16);
        *h = (long)be32(d + 20);
        return 1;
    }
    if (n >= 2 && d[0] == 0xFF && d[1] == 0xD8) {
        Py_ssize_t i = 2;
        while (i + 9 < n) {
            if (d[i] != 0xFF) return 0;
            unsigned m = d[i + 1];
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
                i += 2;
                continue;
            }
            unsigned seg = be16(d + i + 2);
            if ((m >= 0xC0 && m <= 0xC3) || (m >= 0xC5 && m <= 0xC7) || (m >= 0xC9 && m <= 0xCB) ||
                (m >= 0xCD && m <= 0xCF)) {
                *h = (long)be16(d + i + 5);
                *w = (long)be16(d + i + 7);
                return 1;
            }
            i += 2 + seg;
        }
    }
    return 0;
}

/* (seconds, rate) of a FLAC or PCM WAV file, computed as mediainfo.audio_info does; 0 otherwise */
static int audio_sr(const unsigned char *d, Py_ssize_t n, double *seconds, long *rate) {
    if (n >= 42 && memcmp(d, "fLaC", 4) == 0) {
        unsigned long long v = 0;
        for (int k = 18; k < 26; k++) v = v << 8 | d[k];
        unsigned long long r = v >> 44, total = v & ((1ULL << 36) - 1);
        if (r == 0) return 0;
        *seconds = (double)total / (double)r;
        *rate = (long)r;
        return 1;
    }
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WAVE", 4) == 0) {
        Py_ssize_t i = 12;
        unsigned long r = 0, block = 0;
        while (i + 8 <= n) {
            unsigned long long size = le32(d + i + 4);
            if (memcmp(d + i, "fmt ", 4) == 0) {
                if (i + 22 > n) return 0;
                r = le32(d + i + 12);
                block = (unsigned long)d[i + 20] | (unsigned long)d[i + 21] << 8;
            } else if (memcmp(d + i, "data", 4) == 0 && r && block) {
                unsigned long long avail = (unsigned long long)(n - i - 8);
                if (size > avail) size = avail;
                *seconds = (double)size / (double)block / (double)r;
                *rate = (long)r;
                return 1;
            }
            i += 8 + (Py_ssize_t)size + (Py_ssize_t)(size & 1);
        }
    }
    return 0;
}

/* The stats tuple of one sample's members (items[i] for plan[i]); Py_None when the C parsers do not
 * cover it (the caller then leaves it to Python); NULL on a Python error. round_seconds: round the
 * audio seconds to 6 decimals with Python's own round(), as the index stores them. */
static PyObject *stats_of(const char *plan, Py_ssize_t plen, PyObject **items, int round_seconds) {
    long h = 0, w = 0, rate = 0;
    double seconds = 0;
    Py_ssize_t chars = 0;
    int has_img = 0, has_aud = 0, has_txt = 0;
    for (Py_ssize_t i = 0; i < plen; i++) {
        if (plan[i] == '-') continue;
        PyObject *o = items[i];
        if (!PyBytes_Check(o)) Py_RETURN_NONE;
        const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(o);
        Py_ssize_t n = PyBytes_GET_SIZE(o);
        if (plan[i] == 'i') {
            if (!image_hw(d, n, &h, &w)) Py_RETURN_NONE;
            has_img = 1;
        } else if (plan[i] == 'a') {
            if (!audio_sr(d, n, &seconds, &rate)) Py_RETURN_NONE;
            has_aud = 1;
        } else if (plan[i] == 't') {
            for (Py_ssize_t k = 0; k < n; k++)
                if (d[k] & 0x80) Py_RETURN_NONE; /* not ASCII: Python decodes and counts */
            chars = n;
            has_txt = 1;
        }
    }
    PyObject *sec = Py_None;
    if (has_aud) {
        sec = PyFloat_FromDouble(seconds);
        if (sec == NULL) return NULL;
        if (round_seconds) {
            PyObject *r = PyObject_CallMethod(sec, "__round__", "i", 6);
            Py_DECREF(sec);
            if (r == NULL) return NULL;
            sec = r;
        }
    } else {
        Py_INCREF(sec);
    }
    PyObject *none = Py_None;
    return Py_BuildValue("(NNNNN)", has_img ? PyLong_FromLong(h) : Py_NewRef(none),
                         has_img ? PyLong_FromLong(w) : Py_NewRef(none), sec,
                         has_aud ? PyLong_FromLong(rate) : Py_NewRef(none),
                         has_txt ? PyLong_FromSsize_t(chars) : Py_NewRef(none));
}

static PyObject *sample_stats(PyObject *self, PyObject *args) {
    const char *plan;
    Py_ssize_t plen;
    PyObject *datas_arg;
    if (!PyArg_ParseTuple(args, "s#O:sample_stats", &plan, &plen, &datas_arg)) return NULL;
    PyObject *datas = PySequence_Fast(datas_arg, "sample_stats expects a sequence of bytes");
    if (datas == NULL) return NULL;
    if (PySequence_Fast_GET_SIZE(datas) != plen) {
        Py_DECREF(datas);
        PyErr_SetString(PyExc_ValueError, "sample_stats: plan and datas differ in length");
        return NULL;
    }
    PyObject *out = stats_of(plan, plen, PySequence_Fast_ITEMS(datas), 0);
    Py_DECREF(datas);
    return out;
}

/* ---- assemble: a chunk of samples' members, sizes and index stats in one call ---- */

static PyObject *assemble(PyObject *self, PyObject *args) {
    PyObject *records, *layouts, *got;
    if (!PyArg_ParseTuple(args, "O!O!O!:assemble", &PyList_Type, &records, &PyList_Type, &layouts, &PyList_Type, &got))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(records), g = 0, ng = PyList_GET_SIZE(got);
    if (PyList_GET_SIZE(layouts) != n) {
        PyErr_SetString(PyExc_ValueError, "assemble: records and layouts differ in length");
        return NULL;
    }
    PyObject *names = PyList_New(0), *datas = PyList_New(0), *sizes = PyList_New(0), *counts = PyList_New(0),
             *stats = PyList_New(0), *result = NULL;
    PyObject *members[64];
    if (!names || !datas || !sizes || !counts || !stats) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *rec = PyList_GET_ITEM(records, i), *lay = PyList_GET_ITEM(layouts, i);
        if (!PyTuple_Check(rec) || PyTuple_GET_SIZE(rec) < 6 || !PyTuple_Check(lay) || PyTuple_GET_SIZE(lay) < 4) {
            PyErr_SetString(PyExc_TypeError, "assemble: records are payload tuples, layouts _layout() tuples");
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(rec, 0), *values = PyTuple_GET_ITEM(rec, 5);
        PyObject *suffixes = PyTuple_GET_ITEM(lay, 0), *plan_obj = PyTuple_GET_ITEM(lay, 3);
        Py_ssize_t m = PyTuple_Check(values) ? PyTuple_GET_SIZE(values) : -1;
        Py_ssize_t plen;
        const char *plan = PyUnicode_Check(plan_obj) ? PyUnicode_AsUTF8AndSize(plan_obj, &plen) : NULL;
        if (m < 0 || m > 64 || plan == NULL || plen != m || !PyTuple_Check(suffixes) || PyTuple_GET_SIZE(suffixes) != m) {
            PyErr_Clear();
            result = Py_NewRef(Py_None); /* unusual: leave the chunk to Python */
            goto done;
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *v = PyTuple_GET_ITEM(values, j);
            if (!PyBytes_Check(v)) {
                if (g >= ng) goto python;
                v = PyList_GET_ITEM(got, g++);
                if (!PyBytes_Check(v)) goto python; /* a file that could not be read */
            }
            members[j] = v;
        }
        PyObject *st = stats_of(plan, m, members, 1);
        if (st == NULL) goto done;
        if (st == Py_None) {
            Py_DECREF(st);
            goto python;
        }
        int bad = PyList_Append(stats, st) < 0;
        Py_DECREF(st);
        if (bad) goto done;
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *name = PyUnicode_Concat(key, PyTuple_GET_ITEM(suffixes, j));
            PyObject *size = PyLong_FromSsize_t(PyBytes_GET_SIZE(members[j]));
            bad = name == NULL || size == NULL || PyList_Append(names, name) < 0 || PyList_Append(sizes, size) < 0 ||
                  PyList_Append(datas, members[j]) < 0;
            Py_XDECREF(name);
            Py_XDECREF(size);
            if (bad) goto done;
        }
        PyObject *cnt = PyLong_FromSsize_t(m);
        bad = cnt == NULL || PyList_Append(counts, cnt) < 0;
        Py_XDECREF(cnt);
        if (bad) goto done;
    }
    result = PyTuple_Pack(5, names, datas, sizes, counts, stats);
    goto done;
python:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(names);
    Py_XDECREF(datas);
    Py_XDECREF(sizes);
    Py_XDECREF(counts);
    Py_XDECREF(stats);
    return result;
}

/* ---- list_dir: a folder's regular files and sub-folders (what os.scandir + is_file/is_dir give) ---- */

static PyObject *list_dir(PyObject *self, PyObject *arg) {
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(arg, &encoded)) return NULL;
    const char *path = PyBytes_AS_STRING(encoded);
    DIR *d;
    Py_BEGIN_ALLOW_THREADS
    d = opendir(path);
    Py_END_ALLOW_THREADS
    if (d == NULL) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
        Py_DECREF(encoded);
        return NULL;
    }
    int dfd = dirfd(d);
    PyObject *files = PyList_New(0), *dirs = PyList_New(0);
    if (files == NULL || dirs == NULL) goto fail;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
                goto fail;
            }
            break;
        }
        const char *name = e->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
        int kind = 0; /* 1 file, 2 folder, 0 neither */
        unsigned char t = e->d_type;
        if (t == DT_UNKNOWN || t == DT_LNK) { /* like DirEntry.is_file() / is_dir(): follow links */
            struct stat st;
            if (fstatat(dfd, name, &st, 0) == 0) kind = S_ISREG(st.st_mode) ? 1 : S_ISDIR(st.st_mode) ? 2 : 0;
        } else {
            kind = t == DT_REG ? 1 : t == DT_DIR ? 2 : 0;
        }
        if (kind == 0) continue;
        PyObject *u = PyUnicode_DecodeFSDefault(name);
        if (u == NULL || PyList_Append(kind == 1 ? files : dirs, u) < 0) {
            Py_XDECREF(u);
            goto fail;
        }
        Py_DECREF(u);
    }
    closedir(d);
    Py_DECREF(encoded);
    if (PyList_Sort(files) < 0 || PyList_Sort(dirs) < 0) {
        Py_DECREF(files);
        Py_DECREF(dirs);
        return NULL;
    }
    return Py_BuildValue("(NN)", files, dirs);
fail:
    closedir(d);
    Py_DECREF(encoded);
    Py_XDECREF(files);
    Py_XDECREF(dirs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"assemble", assemble, METH_VARARGS,
     "assemble(records, layouts, got) -> (names, datas, sizes, members per sample, stats) | None; None: a "
     "file was unreadable or a header is not for the C parsers, leave the chunk to the Python loop"},
    {"list_dir", list_dir, METH_O, "list_dir(path) -> (sorted file names, sorted folder names); links followed"},
    {"sample_stats", sample_stats, METH_VARARGS,
     "sample_stats(plan, datas) -> (height, width, seconds, rate, chars) | None; plan: one of 'i' 'a' 't' '-' per "
     "member; None: leave it to the Python parsers (other formats, non-ASCII text, anything malformed)"},
    {"read_files", read_files, METH_O, "read_files(paths) -> (list[bytes | None], int64 pairs (size, mtime_ns) or (-1, errno))"},
    {"tar_members", tar_members, METH_VARARGS, "tar_members(names, datas, big=16384) -> list[bytes] | None (ustar members as parts)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pack", "mmdata shard inner loops in C.", -1, methods};

PyMODINIT_FUNC PyInit__pack(void) {
    init_template();
    return PyModule_Create(&module);
}
