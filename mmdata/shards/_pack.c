/* mmdata.shards._pack: the per-file work of `mmdata shard` that pays for C.
 *
 * Sharding many small files is made of per-file costs; these four functions are the ones measured to
 * pay (benchmarks/RESULTS.md); everything else of the writer is Python. Each one is an optional
 * accelerator: mmdata/shards/sources.py, tarwrite.py and mediainfo.py hold the Python code that gives
 * the same results, used when this module is not built (or MMDATA_PURE_PYTHON=1), and
 * tests/shards/test_pack.py checks that both agree (fuzzing the parsers).
 *
 *   read_files(paths, max_size=-1, max_total=-1) -> (items, meta)
 *       Read many files. items[i] is the bytes of paths[i], or an int: an errno when it could not be
 *       read (EFBIG: larger than max_size; EISDIR; EINVAL: not a regular file), 0 when it was left
 *       unread because the files read so far already hold max_total bytes (the first file over 64 KiB
 *       is always read; from the first file left unread on, every large file is left unread).
 *       meta packs two native int64 per path: (size, change stamp), or (-1, errno) when open / fstat
 *       failed. The stamp mixes mtime_ns and ctime_ns (sources.file_stamp gives the same value): an
 *       edit that restores the mtime (touch -r, cp -p, rsync -t) still moves the ctime.
 *       Files under 64 KiB are read in one pass without the GIL, larger ones straight into
 *       their bytes object with the GIL released around each read.
 *   tar_members(names, datas, big=16384) -> list[bytes] | None
 *       The ustar members (512-byte header, data, zero padding) of every (name, data) pair as parts to
 *       write in order; payloads of `big` bytes or more are returned as they are (no copy). Headers
 *       are those of tarwrite.member_header. None when a name is not ASCII, empty or >= 100 bytes,
 *       contains "..", starts with "/", or a size does not fit ustar: the Python writer takes over.
 *   probe_image(data) -> (height, width, mode, channels) | None
 *   probe_audio(data) -> (frames, rate, channels) | None
 *       mediainfo.probe_image_py / probe_audio_py for well-formed PNG / JPEG and FLAC / PCM WAV,
 *       integrity checks included (PNG chunk CRCs and IEND, JPEG end-of-image marker, the last FLAC
 *       frame's CRCs and sample count, WAV data length). Height and width are the displayed ones
 *       (swapped for EXIF orientations 5-8, read from JPEG APP1 Exif / XMP and PNG eXIf before IDAT).
 *       None for anything else, audio of no frame included: the Python code then gives the verdict and
 *       the error message.
 *
 * Built against the limited API (abi3) unless the interpreter is free-threaded (setup.py). No
 * module state (the CRC tables are constants computed at the first import); arguments are copied
 * into tuples this code owns before any call that can run Python code or allocate, so a caller
 * mutating its lists meanwhile cannot free what is being read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOCTTY
#define O_NOCTTY 0
#endif
/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer (it is refused after fstat) */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

#define BLOCK 512
#define SMALL_FILE (1 << 16)
/* Pillow refuses images above this many pixels (2 x PIL.Image.MAX_IMAGE_PIXELS); mediainfo.MAX_PIXELS */
#define MAX_PIXELS 178956970ULL

/* ---- read_files ------------------------------------------------------------------------------ */

#define LARGE (-1) /* slot state: a file of SMALL_FILE bytes or more, read in the second pass */

typedef struct {
    PyObject *encoded; /* the path as bytes (owned) */
    const char *path;  /* its contents, taken with the GIL held (read_small runs without it) */
    char *buf;         /* malloc'd contents of a small file */
    Py_ssize_t len;
    long long size, stamp;
    int state; /* 0: read into buf; > 0: errno; LARGE */
} slot_t;

/* sources.file_stamp: mtime_ns XOR (ctime_ns * 0x9E3779B97F4A7C15), modulo 2^64, as a signed int64 */
static long long change_stamp(const struct stat *st) {
#if defined(__APPLE__)
    long long m = (long long)st->st_mtimespec.tv_sec * 1000000000LL + st->st_mtimespec.tv_nsec;
    long long c = (long long)st->st_ctimespec.tv_sec * 1000000000LL + st->st_ctimespec.tv_nsec;
#else
    long long m = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    long long c = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
#endif
    return (long long)((unsigned long long)m ^ ((unsigned long long)c * 0x9E3779B97F4A7C15ULL));
}

/* open + fstat + the checks every file gets; returns the fd, or -1 with s->state set */
static int open_checked(slot_t *s, const char *path, long long max_size) {
    struct stat st;
    int fd = open(path, OPEN_FLAGS);
    if (fd < 0) {
        s->state = errno;
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        s->state = errno;
        close(fd);
        return -1;
    }
    s->size = (long long)st.st_size;
    s->stamp = change_stamp(&st);
    s->state = S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL
             : (max_size >= 0 && s->size > max_size) ? EFBIG : 0;
    if (s->state != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* read() into dst until `want` bytes, EOF, or a short read that lands on `stop_at` (a regular file's
 * fstat size: then it is EOF, and the call that would return 0 is saved). *got: bytes read. Returns
 * 0 or an errno. */
static int read_full(int fd, char *dst, size_t want, size_t stop_at, size_t *got) {
    *got = 0;
    while (*got < want) {
        size_t asked = want - *got;
        ssize_t r = read(fd, dst + *got, asked);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (r == 0) break;
        *got += (size_t)r;
        if ((size_t)r < asked && *got == stop_at) break;
    }
    return 0;
}

/* Without the GIL: open, fstat, read and close every small file into malloc'd buffers. */
static void read_small(slot_t *slots, Py_ssize_t n, long long max_size) {
    for (Py_ssize_t i = 0; i < n; i++) {
        slot_t *s = &slots[i];
        int fd = open_checked(s, s->path, max_size);
        if (fd < 0) continue;
        if (s->size >= SMALL_FILE) {
            s->state = LARGE;
            close(fd);
            continue;
        }
        size_t cap = (size_t)s->size + 1, got = 0; /* one spare byte: a short read of `size` bytes is EOF */
        char *buf = malloc(cap);
        if (buf == NULL) {
            s->state = ENOMEM;
            close(fd);
            continue;
        }
        s->state = read_full(fd, buf, cap, (size_t)s->size, &got);
        if (s->state == 0 && got == cap) s->state = LARGE; /* grew since fstat: the second pass reads it whole */
        close(fd);
        if (s->state == 0) {
            s->buf = buf;
            s->len = (Py_ssize_t)got;
        } else {
            free(buf);
        }
    }
}

/* A large file straight into a bytes object (the GIL released around each read). NULL with s->state
 * set when it cannot be read; NULL with a Python error only when even an error object fails. */
static PyObject *read_large(slot_t *s, long long max_size) {
    int fd = open_checked(s, s->path, max_size);
    if (fd < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)s->size);
    if (out == NULL) {
        PyErr_Clear();
        s->state = ENOMEM;
        close(fd);
        return NULL;
    }
    char *dst = PyBytes_AsString(out);
    size_t got = 0, size = (size_t)s->size;
    int err;
    char extra = 0;
    ssize_t more = 0;
    Py_BEGIN_ALLOW_THREADS
    err = read_full(fd, dst, size, size, &got);
    if (!err && got == size) {
        do {
            more = read(fd, &extra, 1); /* EOF expected: did the file grow since fstat? */
        } while (more < 0 && errno == EINTR);
        if (more < 0) err = errno;
    }
    Py_END_ALLOW_THREADS
    if (err) {
        Py_DECREF(out);
        close(fd);
        s->state = err;
        return NULL;
    }
    if (got < size) { /* shrank since fstat: keep what is there */
        PyObject *cut = PyBytes_FromStringAndSize(dst, (Py_ssize_t)got);
        Py_DECREF(out);
        out = cut;
    } else if (more > 0) { /* grew since fstat: read on to EOF in a growing buffer, at most max_size + 1 */
        /* size <= max_size (open_checked), so len = size + 1 <= limit and cap >= len */
        size_t limit = max_size >= 0 ? (size_t)max_size + 1 : (size_t)-1, len = size + 1;
        size_t cap = len + (len < limit - len ? len : limit - len); /* doubles, up to limit */
        char *buf = malloc(cap);
        if (buf != NULL) {
            memcpy(buf, dst, size);
            buf[size] = extra;
            for (;;) {
                if (len >= limit) { /* more than max_size bytes: refused like a file fstat says is too big */
                    err = EFBIG;
                    s->size = (long long)len;
                    break;
                }
                if (len == cap) {
                    size_t want = cap + (cap < limit - cap ? cap : limit - cap);
                    char *bigger = realloc(buf, want);
                    if (bigger == NULL) {
                        err = ENOMEM;
                        break;
                    }
                    buf = bigger;
                    cap = want;
                }
                size_t n;
                err = read_full(fd, buf + len, cap - len, (size_t)-1, &n);
                len += n;
                if (err || len < cap) break; /* an error, or EOF before the buffer filled */
            }
        } else {
            err = ENOMEM;
        }
        Py_DECREF(out);
        out = err ? NULL : PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
        free(buf);
        if (out == NULL) {
            PyErr_Clear();
            s->state = err ? err : ENOMEM;
        }
    }
    close(fd);
    return out;
}

static PyObject *read_files(PyObject *self, PyObject *args) {
    PyObject *paths_arg;
    long long max_size = -1, max_total = -1;
    if (!PyArg_ParseTuple(args, "O|LL:read_files", &paths_arg, &max_size, &max_total)) return NULL;
    PyObject *paths = PySequence_Tuple(paths_arg); /* owned: the caller's list may change meanwhile */
    if (paths == NULL) return NULL;
    Py_ssize_t n = PyTuple_Size(paths);
    PyObject *result = NULL, *items = NULL, *meta = NULL;
    slot_t *slots = PyMem_Calloc(n ? (size_t)n : 1, sizeof(slot_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_FSConverter(PyTuple_GetItem(paths, i), &slots[i].encoded)) goto done;
        slots[i].path = PyBytes_AsString(slots[i].encoded);
    }
    Py_BEGIN_ALLOW_THREADS
    read_small(slots, n, max_size);
    Py_END_ALLOW_THREADS
    items = PyList_New(n);
    meta = PyBytes_FromStringAndSize(NULL, 2 * n * (Py_ssize_t)sizeof(long long));
    if (items == NULL || meta == NULL) goto done;
    long long total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += slots[i].state == 0 ? slots[i].len : 0;
    int read_one_large = 0, deferring = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        slot_t *s = &slots[i];
        PyObject *item;
        if (s->state == 0) {
            item = PyBytes_FromStringAndSize(s->buf, s->len);
            free(s->buf);
            s->buf = NULL;
        } else if (s->state == LARGE) {
            if (!deferring && max_total >= 0 && read_one_large && total + s->size > max_total) deferring = 1;
            if (deferring) {
                item = PyLong_FromLong(0);
            } else {
                item = read_large(s, max_size);
                if (item != NULL) {
                    total += PyBytes_Size(item);
                    read_one_large = 1;
                } else if (!PyErr_Occurred()) {
                    item = PyLong_FromLong(s->state);
                }
            }
        } else {
            item = PyLong_FromLong(s->state);
        }
        if (item == NULL) goto done;
        long long *m = (long long *)PyBytes_AsString(meta) + 2 * i;
        if (PyBytes_Check(item)) {
            m[0] = PyBytes_Size(item);
            m[1] = s->stamp;
        } else if (s->state == EFBIG || s->state == LARGE) { /* too big, or left unread: stat'ed */
            m[0] = s->size;
            m[1] = s->stamp;
        } else {
            m[0] = -1;
            m[1] = s->state;
        }
        PyList_SetItem(items, i, item); /* steals the reference */
    }
    result = PyTuple_Pack(2, items, meta);
done:
    if (slots != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            free(slots[i].buf);
            Py_XDECREF(slots[i].encoded);
        }
        PyMem_Free(slots);
    }
    Py_XDECREF(items);
    Py_XDECREF(meta);
    Py_DECREF(paths);
    return result;
}

/* ---- tar_members ----------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    Py_ssize_t name_len;
    const char *data;
    Py_ssize_t size;
} member_t;

/* The fixed part of every header (mode 0644, uid/gid 0, mtime 0, regular file, ustar magic), and its
 * byte sum with the checksum field counted as spaces; built at module exec, read-only after. */
static unsigned char TEMPLATE[BLOCK];
static unsigned long TEMPLATE_SUM;

static void init_template(void) { /* called by init_tables, once */
    memset(TEMPLATE, 0, BLOCK);
    memcpy(TEMPLATE + 100, "0000644", 8);      /* mode */
    memcpy(TEMPLATE + 108, "0000000", 8);      /* uid */
    memcpy(TEMPLATE + 116, "0000000", 8);      /* gid */
    memcpy(TEMPLATE + 136, "00000000000", 12); /* mtime */
    TEMPLATE[156] = '0';                       /* regular file */
    memcpy(TEMPLATE + 257, "ustar", 6);        /* magic + NUL */
    memcpy(TEMPLATE + 263, "00", 2);           /* version */
    unsigned long sum = 8 * ' ';
    for (int j = 0; j < BLOCK; j++)
        if (j < 148 || j >= 156) sum += TEMPLATE[j];
    TEMPLATE_SUM = sum;
}

static void write_header(unsigned char *p, const member_t *m) {
    memcpy(p, TEMPLATE, BLOCK);
    memcpy(p, m->name, (size_t)m->name_len);
    unsigned long sum = TEMPLATE_SUM;
    for (Py_ssize_t j = 0; j < m->name_len; j++) sum += (unsigned char)m->name[j];
    unsigned long long v = (unsigned long long)m->size;
    for (int j = 10; j >= 0; j--, v >>= 3) { /* size: 11 octal digits, then the template's NUL */
        p[124 + j] = (unsigned char)('0' + (v & 7));
        sum += p[124 + j];
    }
    for (int j = 5; j >= 0; j--, sum >>= 3) p[148 + j] = (unsigned char)('0' + (sum & 7)); /* "%06o\0 " */
    p[154] = 0;
    p[155] = ' ';
}

static PyObject *tar_members(PyObject *self, PyObject *args) {
    PyObject *names_arg, *datas_arg;
    Py_ssize_t big = 1 << 14;
    if (!PyArg_ParseTuple(args, "OO|n:tar_members", &names_arg, &datas_arg, &big)) return NULL;
    PyObject *names = PySequence_Tuple(names_arg), *datas = NULL, *result = NULL;
    member_t *ms = NULL;
    if (names == NULL) return NULL;
    datas = PySequence_Tuple(datas_arg);
    if (datas == NULL) goto done;
    Py_ssize_t n = PyTuple_Size(names);
    if (PyTuple_Size(datas) != n) {
        PyErr_SetString(PyExc_ValueError, "tar_members: names and datas differ in length");
        goto done;
    }
    ms = PyMem_Calloc(n ? (size_t)n : 1, sizeof(member_t));
    if (ms == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GetItem(names, i), *data = PyTuple_GetItem(datas, i);
        if (!PyUnicode_Check(name) || !PyBytes_Check(data)) {
            PyErr_SetString(PyExc_TypeError, "tar_members: names must be str and datas bytes");
            goto done;
        }
        member_t *m = &ms[i];
        /* the UTF-8 form is cached in the str, which the names tuple keeps alive */
        m->name = PyUnicode_AsUTF8AndSize(name, &m->name_len);
        if (m->name == NULL) { /* e.g. surrogates: the Python writer raises the right error */
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto done;
        }
        char *buf;
        if (PyBytes_AsStringAndSize(data, &buf, &m->size) < 0) goto done;
        m->data = buf;
        int plain = m->name_len > 0 && m->name_len < 100 && m->name[0] != '/' && (long long)m->size < 077777777777LL;
        for (Py_ssize_t j = 0; plain && j < m->name_len; j++)
            if ((unsigned char)m->name[j] >= 0x80 || (m->name[j] == '.' && j + 1 < m->name_len && m->name[j + 1] == '.'))
                plain = 0;
        if (!plain) { /* a PAX header, or a name to check (and maybe refuse): the Python writer handles it */
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    result = PyList_New(0);
    if (result == NULL) goto done;
    Py_ssize_t i = 0, carry = 0; /* carry: padding of the previous big member, owed to the next run */
    while (i < n || carry) {
        /* one run: the carried padding, whole small members, then the header of a big one */
        Py_ssize_t run = carry;
        for (Py_ssize_t j = i; j < n; j++) {
            run += BLOCK;
            if (ms[j].size >= big) break;
            run += ms[j].size + (-ms[j].size & (BLOCK - 1));
        }
        PyObject *chunk = PyBytes_FromStringAndSize(NULL, run);
        if (chunk == NULL || PyList_Append(result, chunk) < 0) {
            Py_XDECREF(chunk);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(chunk); /* the list holds it */
        unsigned char *p = (unsigned char *)PyBytes_AsString(chunk);
        memset(p, 0, (size_t)carry);
        p += carry;
        carry = 0;
        for (; i < n; i++) {
            const member_t *m = &ms[i];
            write_header(p, m);
            p += BLOCK;
            if (m->size >= big) { /* the payload goes out as its own part, uncopied */
                if (PyList_Append(result, PyTuple_GetItem(datas, i)) < 0) {
                    Py_CLEAR(result);
                    goto done;
                }
                carry = -m->size & (BLOCK - 1);
                i++;
                break;
            }
            memcpy(p, m->data, (size_t)m->size);
            p += m->size;
            Py_ssize_t pad = -m->size & (BLOCK - 1);
            memset(p, 0, (size_t)pad);
            p += pad;
        }
    }
done:
    PyMem_Free(ms);
    Py_XDECREF(datas);
    Py_DECREF(names);
    return result;
}

/* ---- probe_image / probe_audio: mediainfo's parsers and checks for the common formats ---------- */

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | be24(p + 1); }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | le16(p); }

/* CRC tables, filled once when the module is executed (under the import lock) and read-only after:
 * slicing-by-8 for CRC-32 (PNG) and CRC-16 (FLAC frames), ~4x faster than a byte at a time. */
static uint32_t CRC32_T[8][256];
static uint16_t CRC16_T[8][256];
static uint8_t CRC8_T[256];
static int tables_ready = 0;

static void init_template(void);

static void init_tables(void) {
    if (tables_ready) return;
    init_template();
    for (unsigned n = 0; n < 256; n++) {
        uint32_t c = n;
        unsigned s = n << 8, e = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1; /* zlib's polynomial, reflected */
            s = (s & 0x8000) ? ((s << 1) ^ 0x8005) & 0xFFFF : (s << 1) & 0xFFFF; /* FLAC: x^16+x^15+x^2+1 */
            e = (e & 0x80) ? ((e << 1) ^ 0x07) & 0xFF : (e << 1) & 0xFF;      /* FLAC: x^8+x^2+x+1 */
        }
        CRC32_T[0][n] = c;
        CRC16_T[0][n] = (uint16_t)s;
        CRC8_T[n] = (uint8_t)e;
    }
    for (int k = 1; k < 8; k++)
        for (unsigned n = 0; n < 256; n++) {
            CRC32_T[k][n] = (CRC32_T[k - 1][n] >> 8) ^ CRC32_T[0][CRC32_T[k - 1][n] & 0xFF];
            CRC16_T[k][n] = (uint16_t)(((CRC16_T[k - 1][n] << 8) & 0xFFFF) ^ CRC16_T[0][CRC16_T[k - 1][n] >> 8]);
        }
    tables_ready = 1;
}

static uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (; n >= 8; p += 8, n -= 8) {
        c ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        c = CRC32_T[7][c & 0xFF] ^ CRC32_T[6][(c >> 8) & 0xFF] ^ CRC32_T[5][(c >> 16) & 0xFF] ^ CRC32_T[4][c >> 24] ^
            CRC32_T[3][p[4]] ^ CRC32_T[2][p[5]] ^ CRC32_T[1][p[6]] ^ CRC32_T[0][p[7]];
    }
    while (n--) c = CRC32_T[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static unsigned crc16(const uint8_t *p, size_t n) {
    unsigned c = 0;
    for (; n >= 8; p += 8, n -= 8) {
        unsigned x = c ^ ((unsigned)p[0] << 8 | p[1]);
        c = CRC16_T[7][x >> 8] ^ CRC16_T[6][x & 0xFF] ^ CRC16_T[5][p[2]] ^ CRC16_T[4][p[3]] ^ CRC16_T[3][p[4]] ^
            CRC16_T[2][p[5]] ^ CRC16_T[1][p[6]] ^ CRC16_T[0][p[7]];
    }
    while (n--) c = ((c << 8) & 0xFFFF) ^ CRC16_T[0][(c >> 8) ^ *p++];
    return c;
}

static unsigned crc8(const uint8_t *p, size_t n) {
    unsigned c = 0;
    while (n--) c = CRC8_T[c ^ *p++];
    return c;
}

typedef struct {
    uint32_t h, w;
    const char *mode;
    int channels;
} image_t;

static const char *png_mode(unsigned depth, unsigned ctype, int *channels) {
    switch (ctype) {
    case 0:
        *channels = 1;
        return depth == 1 ? "1" : (depth == 2 || depth == 4 || depth == 8) ? "L" : depth == 16 ? "I;16" : NULL;
    case 2:
        *channels = 3;
        return (depth == 8 || depth == 16) ? "RGB" : NULL;
    case 3:
        *channels = 1;
        return (depth == 1 || depth == 2 || depth == 4 || depth == 8) ? "P" : NULL;
    case 4:
        *channels = depth == 8 ? 2 : 4;
        return depth == 8 ? "LA" : depth == 16 ? "RGBA" : NULL;
    case 6:
        *channels = 4;
        return (depth == 8 || depth == 16) ? "RGBA" : NULL;
    }
    return NULL;
}

/* EXIF orientation (codecs.tiff_orientation / jpeg_orientation): the Orientation entry of IFD0 of
 * TIFF-structured EXIF data as Pillow reads it: the first value of a SHORT / LONG (or signed) entry, 0 for
 * an entry of another type, -1 when absent (no entry, no values, a type Pillow skips, values past the end) */
static unsigned tiff_unit(unsigned kind) {
    switch (kind) {
    case 1: case 2: case 6: case 7: return 1;
    case 3: case 8: return 2;
    case 4: case 9: case 11: case 13: return 4;
    case 5: case 10: case 12: case 16: return 8;
    }
    return 0;
}

static int64_t tiff_orientation(const uint8_t *t, size_t n) {
    for (int k = 0; k < 2; k++) { /* Pillow strips the prefix up to twice */
        if (n >= 6 && memcmp(t, "Exif\0\0", 6) == 0) {
            t += 6;
            n -= 6;
        }
    }
    if (n < 8) return -1;
    int le;
    /* Pillow's TIFF prefixes; a third byte of 43 (BigTIFF) makes Pillow fail: nothing found */
    if (t[2] == 43) return -1;
    if (memcmp(t, "II*\0", 4) == 0 || memcmp(t, "II\0*", 4) == 0 || memcmp(t, "II+\0", 4) == 0) le = 1;
    else if (memcmp(t, "MM\0*", 4) == 0 || memcmp(t, "MM*\0", 4) == 0 || memcmp(t, "MM\0+", 4) == 0) le = 0;
    else return -1;
#define U16(p) (le ? le16(p) : be16(p))
#define U32(p) (le ? le32(p) : be32(p))
    uint64_t p = U32(t + 4);
    if (p > n - 2) return -1;
    uint32_t count = U16(t + p);
    p += 2;
    int64_t found = -1;
    for (uint32_t k = 0; k < count; k++) {
        if (n < 12 || p > n - 12) break; /* Pillow keeps the entries read before a cut directory */
        if (U16(t + p) == 0x0112) {      /* a duplicated entry: the last one wins */
            uint32_t kind = U16(t + p + 2), num = U32(t + p + 4), unit = tiff_unit(kind);
            if (unit && num) {
                uint64_t size = (uint64_t)unit * num, at = size <= 4 ? p + 8 : U32(t + p + 8);
                if (at + size <= n)
                    found = (kind == 3 || kind == 8)   ? (int64_t)U16(t + at)
                            : (kind == 4 || kind == 9) ? (int64_t)U32(t + at)
                                                       : 0;
            }
        }
        p += 12;
    }
#undef U16
#undef U32
    return found;
}

/* Pillow's XMP fallback: the first match of tiff:Orientation(="|>)([0-9]) in the packet; -1 when none */
static int64_t xmp_orientation(const uint8_t *x, size_t n) {
    static const char key[] = "tiff:Orientation";
    const size_t k = sizeof(key) - 1;
    for (size_t i = 0; n >= k && i <= n - k; i++) {
        if (memcmp(x + i, key, k) != 0) continue;
        size_t j = i + k;
        if (j + 2 < n && x[j] == '=' && x[j + 1] == '"' && x[j + 2] >= '0' && x[j + 2] <= '9') return x[j + 2] - '0';
        if (j + 1 < n && x[j] == '>' && x[j + 1] >= '0' && x[j + 1] <= '9') return x[j + 1] - '0';
    }
    return -1;
}

static int png(const uint8_t *d, size_t n, image_t *out) {
    if (n < 33 || memcmp(d + 8, "\0\0\0\x0dIHDR", 8) != 0) return 0;
    out->w = be32(d + 16);
    out->h = be32(d + 20);
    out->mode = png_mode(d[24], d[25], &out->channels);
    if (out->mode == NULL || out->w == 0 || out->h == 0 || (uint64_t)out->w * out->h > MAX_PIXELS) return 0;
    size_t pos = 8;
    int idat = 0;
    int64_t orientation = -1;
    for (;;) {
        if (n - pos < 12) return 0;
        size_t len = be32(d + pos);
        if (len > n - pos - 12) return 0;
        if (crc32(d + pos + 4, len + 4) != be32(d + pos + 8 + len)) return 0;
        const uint8_t *type = d + pos + 4, *body = d + pos + 8;
        if (memcmp(type, "eXIf", 4) == 0) {
            if (idat) return 0; /* Pillow reads it after the pixels: mediainfo asks Pillow */
            orientation = tiff_orientation(body, len);
        } else if ((memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0) &&
                   ((len >= 22 && memcmp(body, "Raw profile type exif\0", 22) == 0) ||
                    (len >= 18 && memcmp(body, "XML:com.adobe.xmp\0", 18) == 0))) {
            return 0; /* EXIF / XMP in a text chunk: mediainfo asks Pillow */
        }
        pos += 12 + len;
        if (memcmp(type, "IDAT", 4) == 0) {
            idat = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        }
    }
    if (orientation >= 5 && orientation <= 8) { /* shown turned a quarter: the size decode_image gives */
        uint32_t t = out->h;
        out->h = out->w;
        out->w = t;
    }
    return idat;
}

static int is_sof(unsigned m) {
    return (m >= 0xC0 && m <= 0xC3) || (m >= 0xC5 && m <= 0xC7) || (m >= 0xC9 && m <= 0xCB) || (m >= 0xCD && m <= 0xCF);
}

static int jpeg(const uint8_t *d, size_t n, image_t *out) {
    size_t i = 2, start;
    int have_sof = 0;
    unsigned bits = 0, comps = 0;
    const uint8_t *exif = NULL, *xmp = NULL;
    size_t exif_n = 0, xmp_n = 0;
    for (;;) {
        if (n - i < 4) return 0;
        if (d[i] != 0xFF) { /* junk between segments: skipped, as Pillow and libjpeg do */
            i++;
            continue;
        }
        unsigned m = d[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        if (m == 0x00 || m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            i += 2;
            continue;
        }
        if (m == 0xD9) return 0;
        size_t seg = be16(d + i + 2);
        if (seg < 2 || seg > n - i - 2) return 0;
        if (is_sof(m)) {
            if (seg < 8) return 0;
            bits = d[i + 4];
            out->h = be16(d + i + 5);
            out->w = be16(d + i + 7);
            comps = d[i + 9];
            have_sof = 1;
        } else if (m == 0xE1 && seg - 2 >= 6 && memcmp(d + i + 4, "Exif\0\0", 6) == 0) {
            if (exif) return 0; /* a second Exif segment: Pillow joins them; mediainfo does that */
            exif = d + i + 4;
            exif_n = seg - 2;
        } else if (m == 0xE1 && seg - 2 >= 29 && memcmp(d + i + 4, "http://ns.adobe.com/xap/1.0/\0", 29) == 0) {
            xmp = d + i + 4 + 29;
            xmp_n = seg - 2 - 29;
        } else if (m == 0xDA) {
            if (!have_sof) return 0;
            start = i + 2 + seg;
            break;
        }
        i += 2 + seg;
    }
    int eoi = 0;
    for (size_t k = n - 1; k > start;) { /* k-1 from n-2 down to start */
        k--;
        if (d[k] == 0xFF && d[k + 1] == 0xD9) {
            eoi = 1;
            break;
        }
    }
    if (!eoi || bits != 8) return 0;
    out->mode = comps == 1 ? "L" : comps == 3 ? "RGB" : comps == 4 ? "CMYK" : NULL;
    out->channels = (int)comps;
    int64_t orientation = exif ? tiff_orientation(exif, exif_n) : -1;
    if (orientation < 0 && xmp) orientation = xmp_orientation(xmp, xmp_n);
    if (orientation >= 5 && orientation <= 8) { /* shown turned a quarter: the size decode_image gives */
        uint32_t t = out->h;
        out->h = out->w;
        out->w = t;
    }
    return out->mode != NULL && out->h && out->w && (uint64_t)out->w * out->h <= MAX_PIXELS;
}

static PyObject *probe_image(PyObject *self, PyObject *arg) {
    char *buf;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(arg, &buf, &len) < 0) return NULL;
    const uint8_t *d = (const uint8_t *)buf;
    size_t n = (size_t)len;
    image_t im = {0, 0, NULL, 0};
    int ok = 0;
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
        ok = png(d, n, &im);
    } else if (n >= 2 && d[0] == 0xFF && d[1] == 0xD8) {
        ok = jpeg(d, n, &im);
    }
    if (!ok) Py_RETURN_NONE;
    return Py_BuildValue("(kksi)", (unsigned long)im.h, (unsigned long)im.w, im.mode, im.channels);
}

typedef struct {
    uint64_t frames;
    uint32_t rate;
    unsigned channels;
} audio_t;

/* A FLAC frame header at p whose CRC-8 matches: its first sample and block size (mediainfo._flac_frame_header) */
static int flac_frame(const uint8_t *d, size_t p, size_t end, unsigned fixed_block, uint64_t *first, uint32_t *block) {
    if (end - p < 6) return 0;
    unsigned b2 = d[p + 2], b3 = d[p + 3], bs = b2 >> 4, sr = b2 & 15;
    if (bs == 0 || sr == 15 || (b3 >> 4) > 10 || (b3 & 1) || ((b3 >> 1) & 7) == 3) return 0;
    size_t q = p + 4;
    unsigned f = d[q];
    int extra;
    uint64_t v;
    if (f < 0x80) {
        extra = 0;
        v = f;
    } else if (f >= 0xC0 && f < 0xFE) {
        extra = f < 0xE0 ? 1 : f < 0xF0 ? 2 : f < 0xF8 ? 3 : f < 0xFC ? 4 : 5;
        v = f & (0x3Fu >> extra);
    } else if (f == 0xFE) {
        extra = 6;
        v = 0;
    } else {
        return 0;
    }
    int variable = d[p + 1] & 1;
    if (extra > (variable ? 6 : 5) || end - q < (size_t)(1 + extra)) return 0;
    for (int k = 1; k <= extra; k++) {
        unsigned c = d[q + k];
        if ((c & 0xC0) != 0x80) return 0;
        v = v << 6 | (c & 0x3F);
    }
    q += 1 + (size_t)extra;
    if (bs == 1) {
        *block = 192;
    } else if (bs <= 5) {
        *block = 576u << (bs - 2);
    } else if (bs == 6) {
        if (end - q < 1) return 0;
        *block = d[q] + 1u;
        q += 1;
    } else if (bs == 7) {
        if (end - q < 2) return 0;
        *block = be16(d + q) + 1u;
        q += 2;
    } else {
        *block = 256u << (bs - 8);
    }
    q += sr == 12 ? 1 : (sr == 13 || sr == 14) ? 2 : 0;
    if (q >= end || crc8(d + p, q - p) != d[q]) return 0;
    *first = variable ? v : v * fixed_block;
    return 1;
}

static int flac(const uint8_t *d, size_t n, audio_t *out) {
    if (n < 42 || (d[4] & 0x7F) != 0 || be24(d + 5) != 34) return 0;
    unsigned max_block = be16(d + 10);
    size_t max_frame = be24(d + 15);
    uint64_t v = 0;
    for (int k = 18; k < 26; k++) v = v << 8 | d[k];
    out->rate = (uint32_t)(v >> 44);
    out->channels = (unsigned)((v >> 41) & 7) + 1;
    uint64_t total = v & ((1ULL << 36) - 1);
    if (out->rate == 0) return 0;
    size_t pos = 4;
    for (;;) {
        if (n - pos < 4) return 0;
        int last = d[pos] & 0x80;
        size_t len = be24(d + pos + 1);
        if (len > n - pos - 4) return 0;
        pos += 4 + len;
        if (last) break;
    }
    size_t end = n;
    if (end - pos >= 128 && memcmp(d + end - 128, "TAG", 3) == 0) end -= 128; /* an ID3v1 tag */
    if (end == pos) return 0;
    size_t lo = (max_frame && end - pos > max_frame + 16) ? end - max_frame - 16 : pos;
    /* sync codes (FF F8 / FF F9) in [lo, end - 2], found forward with memchr; the last 64 kept */
    size_t cand[64];
    size_t nc = 0;
    for (const uint8_t *q = d + lo; q < d + end - 1;) {
        q = memchr(q, 0xFF, (size_t)(d + end - 1 - q));
        if (q == NULL) break;
        if ((q[1] & 0xFE) == 0xF8) cand[nc++ % 64] = (size_t)(q - d);
        q++;
    }
    int tries = 16, found = 0;
    uint64_t first = 0;
    uint32_t block = 0;
    for (size_t k = 0; k < nc && k < 64 && tries; k++) { /* from the last one back, as mediainfo._flac */
        size_t p = cand[(nc - 1 - k) % 64];
        if (flac_frame(d, p, end, max_block, &first, &block)) {
            if (crc16(d + p, end - p) == 0) {
                found = 1;
                break;
            }
            tries--;
        }
    }
    if (!found) return 0;
    uint64_t stop = first + block;
    if (total && stop != total) return 0;
    out->frames = stop;
    return 1;
}

/* mediainfo.wav_size_unknown: a data chunk size a streaming writer leaves (0xFFFFFFFF, 0x7FFFFFFF, sox's
 * 0x7FFFF000 rounded down to whole frames, past the end; or 0 with a frame after it that is no chunk
 * header) stands for "to the end of the file". `after` points at the avail bytes after the chunk header. */
static int wav_size_unknown(uint64_t size, uint64_t avail, unsigned block, const uint8_t *after) {
    if (size > avail)
        return size == 0xFFFFFFFFu || size == 0x7FFFFFFFu || size == 0x7FFFF000u ||
               size == 0x7FFFF000u - 0x7FFFF000u % block;
    if (size != 0 || avail < block) return 0;
    if (avail < 8) return 1;
    for (int i = 0; i < 4; i++)
        if (after[i] < 0x20 || after[i] > 0x7E) return 1;
    return le32(after + 4) > avail - 8; /* a chunk header: an empty data chunk, other chunks after it */
}

static int wav(const uint8_t *d, size_t n, audio_t *out) {
    size_t pos = 12;
    int have_fmt = 0;
    unsigned tag = 0, block = 0;
    while (n - pos >= 8) {
        const uint8_t *cid = d + pos;
        uint64_t size = le32(d + pos + 4), avail = n - pos - 8;
        if (memcmp(cid, "fmt ", 4) == 0) {
            if (size < 16 || size > avail) return 0;
            tag = le16(d + pos + 8);
            out->channels = le16(d + pos + 10);
            out->rate = le32(d + pos + 12);
            block = le16(d + pos + 20);
            if (tag == 0xFFFE) tag = size >= 40 ? le16(d + pos + 32) : 0;
            if (!out->channels || !out->rate || !block) return 0;
            have_fmt = 1;
        } else if (memcmp(cid, "data", 4) == 0) {
            if (!have_fmt || !(tag == 1 || tag == 3 || tag == 6 || tag == 7)) return 0;
            if (wav_size_unknown(size, avail, block, d + pos + 8)) {
                size = avail; /* a header never finalised: the audio runs to the end of the file */
            } else if (size > avail) {
                return 0;
            }
            out->frames = size / block;
            return 1;
        }
        if (size > avail) return 0;
        uint64_t next = (uint64_t)pos + 8 + size + (size & 1);
        if (next > n) return 0;
        pos = (size_t)next;
    }
    return 0;
}

static PyObject *probe_audio(PyObject *self, PyObject *arg) {
    char *buf;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(arg, &buf, &len) < 0) return NULL;
    const uint8_t *d = (const uint8_t *)buf;
    size_t n = (size_t)len;
    audio_t a = {0, 0, 0};
    int ok = 0;
    if (n >= 4 && memcmp(d, "fLaC", 4) == 0) {
        ok = flac(d, n, &a);
    } else if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WAVE", 4) == 0) {
        ok = wav(d, n, &a);
    }
    if (!ok || !a.frames) Py_RETURN_NONE; /* no frame: bad audio, the Python parser says why */
    return Py_BuildValue("(Kki)", (unsigned long long)a.frames, (unsigned long)a.rate, (int)a.channels);
}

/* ---- module ---------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"read_files", read_files, METH_VARARGS,
     "read_files(paths, max_size=-1, max_total=-1) -> (list[bytes | int], int64 pairs (size, change stamp) or (-1, errno))"},
    {"tar_members", tar_members, METH_VARARGS, "tar_members(names, datas, big=16384) -> list[bytes] | None (ustar members as parts)"},
    {"probe_image", probe_image, METH_O, "probe_image(data) -> (height, width, mode, channels) | None (PNG / JPEG, checked)"},
    {"probe_audio", probe_audio, METH_O, "probe_audio(data) -> (frames, rate, channels) | None (FLAC / PCM WAV with at least one frame, checked)"},
    {NULL, NULL, 0, NULL},
};

static int exec_module(PyObject *module) {
    init_tables();
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)exec_module},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED}, /* no module state; arguments are copied before use */
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pack", "mmdata shard per-file work in C (optional; see mmdata/shards/_pack.c).",
    0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pack(void) { return PyModuleDef_Init(&module); }
