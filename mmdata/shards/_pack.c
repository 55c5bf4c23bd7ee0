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
 *       meta packs two native int64 per path: (size, mtime_ns), or (-1, errno) when open / fstat
 *       failed. Files under 64 KiB are read in one pass without the GIL, larger ones straight into
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
 *       frame's CRCs and sample count, WAV data length). None for anything else: the Python code
 *       then gives the verdict and the error message.
 *
 * Built against the limited API (abi3) unless the interpreter is free-threaded (setup.py). No
 * module state; arguments are copied into tuples this code owns before any call that can run Python
 * code or allocate, so a caller mutating its lists meanwhile cannot free what is being read.
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

static const uint32_t CRC32_TABLE[256] = {
    0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f,
    0xe963a535, 0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
    0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2,
    0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
    0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9,
    0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
    0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
    0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
    0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423,
    0xcfba9599, 0xb8bda50f, 0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
    0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d, 0x76dc4190, 0x01db7106,
    0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
    0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d,
    0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
    0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950,
    0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
    0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7,
    0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
    0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9, 0x5005713c, 0x270241aa,
    0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
    0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
    0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
    0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84,
    0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
    0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb,
    0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
    0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8, 0xa1d1937e,
    0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
    0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55,
    0x316e8eef, 0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
    0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28,
    0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
    0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f,
    0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
    0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
    0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
    0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69,
    0x616bffd3, 0x166ccf45, 0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
    0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db, 0xaed16a4a, 0xd9d65adc,
    0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
    0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693,
    0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
    0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};
static const uint16_t CRC16_TABLE[256] = {
    0x0000, 0x8005, 0x800f, 0x000a, 0x801b, 0x001e, 0x0014, 0x8011,
    0x8033, 0x0036, 0x003c, 0x8039, 0x0028, 0x802d, 0x8027, 0x0022,
    0x8063, 0x0066, 0x006c, 0x8069, 0x0078, 0x807d, 0x8077, 0x0072,
    0x0050, 0x8055, 0x805f, 0x005a, 0x804b, 0x004e, 0x0044, 0x8041,
    0x80c3, 0x00c6, 0x00cc, 0x80c9, 0x00d8, 0x80dd, 0x80d7, 0x00d2,
    0x00f0, 0x80f5, 0x80ff, 0x00fa, 0x80eb, 0x00ee, 0x00e4, 0x80e1,
    0x00a0, 0x80a5, 0x80af, 0x00aa, 0x80bb, 0x00be, 0x00b4, 0x80b1,
    0x8093, 0x0096, 0x009c, 0x8099, 0x0088, 0x808d, 0x8087, 0x0082,
    0x8183, 0x0186, 0x018c, 0x8189, 0x0198, 0x819d, 0x8197, 0x0192,
    0x01b0, 0x81b5, 0x81bf, 0x01ba, 0x81ab, 0x01ae, 0x01a4, 0x81a1,
    0x01e0, 0x81e5, 0x81ef, 0x01ea, 0x81fb, 0x01fe, 0x01f4, 0x81f1,
    0x81d3, 0x01d6, 0x01dc, 0x81d9, 0x01c8, 0x81cd, 0x81c7, 0x01c2,
    0x0140, 0x8145, 0x814f, 0x014a, 0x815b, 0x015e, 0x0154, 0x8151,
    0x8173, 0x0176, 0x017c, 0x8179, 0x0168, 0x816d, 0x8167, 0x0162,
    0x8123, 0x0126, 0x012c, 0x8129, 0x0138, 0x813d, 0x8137, 0x0132,
    0x0110, 0x8115, 0x811f, 0x011a, 0x810b, 0x010e, 0x0104, 0x8101,
    0x8303, 0x0306, 0x030c, 0x8309, 0x0318, 0x831d, 0x8317, 0x0312,
    0x0330, 0x8335, 0x833f, 0x033a, 0x832b, 0x032e, 0x0324, 0x8321,
    0x0360, 0x8365, 0x836f, 0x036a, 0x837b, 0x037e, 0x0374, 0x8371,
    0x8353, 0x0356, 0x035c, 0x8359, 0x0348, 0x834d, 0x8347, 0x0342,
    0x03c0, 0x83c5, 0x83cf, 0x03ca, 0x83db, 0x03de, 0x03d4, 0x83d1,
    0x83f3, 0x03f6, 0x03fc, 0x83f9, 0x03e8, 0x83ed, 0x83e7, 0x03e2,
    0x83a3, 0x03a6, 0x03ac, 0x83a9, 0x03b8, 0x83bd, 0x83b7, 0x03b2,
    0x0390, 0x8395, 0x839f, 0x039a, 0x838b, 0x038e, 0x0384, 0x8381,
    0x0280, 0x8285, 0x828f, 0x028a, 0x829b, 0x029e, 0x0294, 0x8291,
    0x82b3, 0x02b6, 0x02bc, 0x82b9, 0x02a8, 0x82ad, 0x82a7, 0x02a2,
    0x82e3, 0x02e6, 0x02ec, 0x82e9, 0x02f8, 0x82fd, 0x82f7, 0x02f2,
    0x02d0, 0x82d5, 0x82df, 0x02da, 0x82cb, 0x02ce, 0x02c4, 0x82c1,
    0x8243, 0x0246, 0x024c, 0x8249, 0x0258, 0x825d, 0x8257, 0x0252,
    0x0270, 0x8275, 0x827f, 0x027a, 0x826b, 0x026e, 0x0264, 0x8261,
    0x0220, 0x8225, 0x822f, 0x022a, 0x823b, 0x023e, 0x0234, 0x8231,
    0x8213, 0x0216, 0x021c, 0x8219, 0x0208, 0x820d, 0x8207, 0x0202,
};
static const uint8_t CRC8_TABLE[256] = {
    0x00, 0x07, 0x0e, 0x09, 0x1c, 0x1b, 0x12, 0x15, 0x38, 0x3f, 0x36, 0x31,
    0x24, 0x23, 0x2a, 0x2d, 0x70, 0x77, 0x7e, 0x79, 0x6c, 0x6b, 0x62, 0x65,
    0x48, 0x4f, 0x46, 0x41, 0x54, 0x53, 0x5a, 0x5d, 0xe0, 0xe7, 0xee, 0xe9,
    0xfc, 0xfb, 0xf2, 0xf5, 0xd8, 0xdf, 0xd6, 0xd1, 0xc4, 0xc3, 0xca, 0xcd,
    0x90, 0x97, 0x9e, 0x99, 0x8c, 0x8b, 0x82, 0x85, 0xa8, 0xaf, 0xa6, 0xa1,
    0xb4, 0xb3, 0xba, 0xbd, 0xc7, 0xc0, 0xc9, 0xce, 0xdb, 0xdc, 0xd5, 0xd2,
    0xff, 0xf8, 0xf1, 0xf6, 0xe3, 0xe4, 0xed, 0xea, 0xb7, 0xb0, 0xb9, 0xbe,
    0xab, 0xac, 0xa5, 0xa2, 0x8f, 0x88, 0x81, 0x86, 0x93, 0x94, 0x9d, 0x9a,
    0x27, 0x20, 0x29, 0x2e, 0x3b, 0x3c, 0x35, 0x32, 0x1f, 0x18, 0x11, 0x16,
    0x03, 0x04, 0x0d, 0x0a, 0x57, 0x50, 0x59, 0x5e, 0x4b, 0x4c, 0x45, 0x42,
    0x6f, 0x68, 0x61, 0x66, 0x73, 0x74, 0x7d, 0x7a, 0x89, 0x8e, 0x87, 0x80,
    0x95, 0x92, 0x9b, 0x9c, 0xb1, 0xb6, 0xbf, 0xb8, 0xad, 0xaa, 0xa3, 0xa4,
    0xf9, 0xfe, 0xf7, 0xf0, 0xe5, 0xe2, 0xeb, 0xec, 0xc1, 0xc6, 0xcf, 0xc8,
    0xdd, 0xda, 0xd3, 0xd4, 0x69, 0x6e, 0x67, 0x60, 0x75, 0x72, 0x7b, 0x7c,
    0x51, 0x56, 0x5f, 0x58, 0x4d, 0x4a, 0x43, 0x44, 0x19, 0x1e, 0x17, 0x10,
    0x05, 0x02, 0x0b, 0x0c, 0x21, 0x26, 0x2f, 0x28, 0x3d, 0x3a, 0x33, 0x34,
    0x4e, 0x49, 0x40, 0x47, 0x52, 0x55, 0x5c, 0x5b, 0x76, 0x71, 0x78, 0x7f,
    0x6a, 0x6d, 0x64, 0x63, 0x3e, 0x39, 0x30, 0x37, 0x22, 0x25, 0x2c, 0x2b,
    0x06, 0x01, 0x08, 0x0f, 0x1a, 0x1d, 0x14, 0x13, 0xae, 0xa9, 0xa0, 0xa7,
    0xb2, 0xb5, 0xbc, 0xbb, 0x96, 0x91, 0x98, 0x9f, 0x8a, 0x8d, 0x84, 0x83,
    0xde, 0xd9, 0xd0, 0xd7, 0xc2, 0xc5, 0xcc, 0xcb, 0xe6, 0xe1, 0xe8, 0xef,
    0xfa, 0xfd, 0xf4, 0xf3,
};

/* ---- read_files ------------------------------------------------------------------------------ */

#define LARGE (-1) /* slot state: a file of SMALL_FILE bytes or more, read in the second pass */

typedef struct {
    PyObject *encoded; /* the path as bytes (owned) */
    char *buf;         /* malloc'd contents of a small file */
    Py_ssize_t len;
    long long size, mtime;
    int state; /* 0: read into buf; > 0: errno; LARGE */
} slot_t;

static long long mtime_ns(const struct stat *st) {
#if defined(__APPLE__)
    return (long long)st->st_mtimespec.tv_sec * 1000000000LL + st->st_mtimespec.tv_nsec;
#else
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
#endif
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
    s->mtime = mtime_ns(&st);
    s->state = S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL
             : (max_size >= 0 && s->size > max_size) ? EFBIG : 0;
    if (s->state != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Without the GIL: open, fstat, read and close every small file into malloc'd buffers. */
static void read_small(slot_t *slots, Py_ssize_t n, long long max_size) {
    for (Py_ssize_t i = 0; i < n; i++) {
        slot_t *s = &slots[i];
        int fd = open_checked(s, PyBytes_AsString(s->encoded), max_size);
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
        for (;;) {
            size_t want = cap - got;
            ssize_t r = read(fd, buf + got, want);
            if (r < 0) {
                if (errno == EINTR) continue;
                s->state = errno;
                break;
            }
            if (r == 0) break;
            got += (size_t)r;
            if ((size_t)r < want && got == (size_t)s->size) break; /* all fstat promised, then EOF */
            if (got == cap) {                                       /* grew since fstat */
                s->state = LARGE;
                break;
            }
        }
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
    int fd = open_checked(s, PyBytes_AsString(s->encoded), max_size);
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
    int err = 0;
    char extra = 0;
    ssize_t more = 0;
    Py_BEGIN_ALLOW_THREADS
    while (got < size) {
        ssize_t r = read(fd, dst + got, size - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
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
    } else if (more > 0) { /* grew since fstat: read on to EOF in a growing buffer */
        size_t cap = size * 2 + 2, len = size + 1;
        char *buf = malloc(cap);
        if (buf != NULL) {
            memcpy(buf, dst, size);
            buf[size] = extra;
            for (;;) {
                if (len == cap) {
                    char *bigger = realloc(buf, cap * 2);
                    if (bigger == NULL) {
                        err = ENOMEM;
                        break;
                    }
                    buf = bigger;
                    cap *= 2;
                }
                ssize_t r = read(fd, buf + len, cap - len);
                if (r < 0) {
                    if (errno == EINTR) continue;
                    err = errno;
                    break;
                }
                if (r == 0) break;
                len += (size_t)r;
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
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyUnicode_FSConverter(PyTuple_GetItem(paths, i), &slots[i].encoded)) goto done;
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
            m[1] = s->mtime;
        } else if (s->state == EFBIG || s->state == LARGE) { /* too big, or left unread: stat'ed */
            m[0] = s->size;
            m[1] = s->mtime;
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

static void write_header(unsigned char *p, const member_t *m) {
    memset(p, 0, BLOCK);
    memcpy(p, m->name, (size_t)m->name_len);
    memcpy(p + 100, "0000644", 8);      /* mode */
    memcpy(p + 108, "0000000", 8);      /* uid */
    memcpy(p + 116, "0000000", 8);      /* gid */
    snprintf((char *)p + 124, 12, "%011llo", (unsigned long long)m->size);
    memcpy(p + 136, "00000000000", 12); /* mtime */
    memset(p + 148, ' ', 8);            /* the checksum counts itself as spaces */
    p[156] = '0';                       /* regular file */
    memcpy(p + 257, "ustar", 6);        /* magic + NUL */
    memcpy(p + 263, "00", 2);           /* version */
    unsigned long sum = 0;
    for (int j = 0; j < BLOCK; j++) sum += p[j];
    snprintf((char *)p + 148, 8, "%06lo", sum);
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

static uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = CRC32_TABLE[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static unsigned crc16(const uint8_t *p, size_t n) {
    unsigned c = 0;
    while (n--) c = ((c << 8) & 0xFFFF) ^ CRC16_TABLE[(c >> 8) ^ *p++];
    return c;
}

static unsigned crc8(const uint8_t *p, size_t n) {
    unsigned c = 0;
    while (n--) c = CRC8_TABLE[c ^ *p++];
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

static int png(const uint8_t *d, size_t n, image_t *out) {
    if (n < 33 || memcmp(d + 8, "\0\0\0\x0dIHDR", 8) != 0) return 0;
    out->w = be32(d + 16);
    out->h = be32(d + 20);
    out->mode = png_mode(d[24], d[25], &out->channels);
    if (out->mode == NULL || out->w == 0 || out->h == 0 || (uint64_t)out->w * out->h > MAX_PIXELS) return 0;
    size_t pos = 8;
    int idat = 0;
    for (;;) {
        if (n - pos < 12) return 0;
        size_t len = be32(d + pos);
        if (len > n - pos - 12) return 0;
        if (crc32(d + pos + 4, len + 4) != be32(d + pos + 8 + len)) return 0;
        const uint8_t *type = d + pos + 4;
        pos += 12 + len;
        if (memcmp(type, "IDAT", 4) == 0) {
            idat = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        }
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
    size_t p = end - 2;
    int tries = 16, found = 0;
    uint64_t first = 0;
    uint32_t block = 0;
    while (p >= lo && tries) {
        size_t q = p + 1;
        int hit = 0;
        while (q > lo) {
            q--;
            if (d[q] == 0xFF && (d[q + 1] & 0xFE) == 0xF8) {
                hit = 1;
                break;
            }
        }
        if (!hit) break;
        p = q;
        if (flac_frame(d, p, end, max_block, &first, &block)) {
            if (crc16(d + p, end - p) == 0) {
                found = 1;
                break;
            }
            tries--;
        }
        p--;
    }
    if (!found) return 0;
    uint64_t stop = first + block;
    if (total && stop != total) return 0;
    out->frames = stop;
    return 1;
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
            if (size == 0xFFFFFFFFu) {
                size = avail; /* written while streaming: the length is unknown */
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
    if (!ok) Py_RETURN_NONE;
    return Py_BuildValue("(Kki)", (unsigned long long)a.frames, (unsigned long)a.rate, (int)a.channels);
}

/* ---- module ---------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"read_files", read_files, METH_VARARGS,
     "read_files(paths, max_size=-1, max_total=-1) -> (list[bytes | int], int64 pairs (size, mtime_ns) or (-1, errno))"},
    {"tar_members", tar_members, METH_VARARGS, "tar_members(names, datas, big=16384) -> list[bytes] | None (ustar members as parts)"},
    {"probe_image", probe_image, METH_O, "probe_image(data) -> (height, width, mode, channels) | None (PNG / JPEG, checked)"},
    {"probe_audio", probe_audio, METH_O, "probe_audio(data) -> (frames, rate, channels) | None (FLAC / PCM WAV, checked)"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
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
