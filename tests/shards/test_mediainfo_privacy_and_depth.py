"""QA42: what the card's checks missed. Identifying metadata outside EXIF GPS / serial / artist and audio tags
(PNG text chunks, free-text EXIF, XMP, JPEG comments, broadcast-wave chunks: clinical #3, hub #6); 12-bit images
hidden by one full-range image (clinical #1); 16-bit colour PNGs (#5); float / signed images the reader clips
(#15); several frames / pages of which the reader reads the first (#12)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
from PIL import Image, PngImagePlugin

import mmdata
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import DepthFacts, identifying_metadata, image_depth, image_frames

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
       b'<exif:GPSLatitude>52,31.2N</exif:GPSLatitude><dc:creator>Jane Doe</dc:creator></rdf:Description>'
       b'</rdf:RDF></x:xmpmeta>')
TOOL_XMP = b'<x:xmpmeta><rdf:Description xmp:CreatorTool="GIMP 2.10"><dc:format>image/png</dc:format></rdf:Description>'


def _img() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))


def _png(*chunks: tuple[str, str, str]) -> bytes:
    """A PNG with text chunks: (``tEXt`` / ``zTXt`` / ``iTXt``, key, text)."""
    info = PngImagePlugin.PngInfo()
    for kind, k, v in chunks:
        if kind == "iTXt":
            info.add_itxt(k, v, zip=True)
        else:
            info.add_text(k, v, zip=kind == "zTXt")
    buf = io.BytesIO()
    _img().save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _jpeg(**kw: object) -> bytes:
    buf = io.BytesIO()
    _img().save(buf, "JPEG", **kw)
    return buf.getvalue()


def _exif(tags: dict[int, object], exif_ifd: dict[int, object] | None = None) -> Image.Exif:
    ex = Image.Exif()
    for k, v in tags.items():
        ex[k] = v
    for k, v in (exif_ifd or {}).items():
        ex.get_ifd(0x8769)[k] = v
    return ex


def _wav_with(*chunks: tuple[bytes, bytes]) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(80, dtype="int16"), 8000, format="WAV")
    d = buf.getvalue()
    extra = b"".join(cid + len(body).to_bytes(4, "little") + body + b"\x00" * (len(body) & 1) for cid, body in chunks)
    d = d[:12] + extra + d[12:]
    return d[:4] + (len(d) - 8).to_bytes(4, "little") + d[8:]


def _bext(description: bytes = b"", originator: bytes = b"") -> bytes:
    return description.ljust(256, b"\x00") + originator.ljust(32, b"\x00") + bytes(32) + b"2026-01-0112:00:00" + bytes(
        602 - 256 - 32 - 32 - 18)


def test_png_text_chunks_are_identifying_unless_software_wrote_them() -> None:
    assert identifying_metadata(_png(("tEXt", "PatientName", "Doe^Jane"), ("tEXt", "PatientID", "MRN-123456"))) == {"text_chunks"}
    assert identifying_metadata(_png(("zTXt", "Comment", "Geb. 01.02.1950 München"))) == {"text_chunks"}
    assert identifying_metadata(_png(("tEXt", "Software", "matplotlib 3.9"), ("tEXt", "Creation Time", "2026"))) == set()
    assert identifying_metadata(_png(("tEXt", "Author", ""))) == set()  # says nothing


def test_png_xmp_is_read_for_gps_and_creator() -> None:
    assert identifying_metadata(_png(("iTXt", "XML:com.adobe.xmp", XMP.decode()))) == {"xmp", "gps", "artist"}
    assert identifying_metadata(_png(("iTXt", "XML:com.adobe.xmp", TOOL_XMP.decode()))) == set()


def test_imagemagick_exif_text_profile_is_read() -> None:
    ex = _exif({0x013B: "Jane Doe"}).tobytes()
    profile = "\nexif\n" + f"{len(ex):8d}\n" + ex.hex()
    assert identifying_metadata(_png(("zTXt", "Raw profile type exif", profile))) == {"artist"}


def test_exif_free_text_and_xp_author() -> None:
    assert identifying_metadata(_jpeg(exif=_exif({0x010E: "Patient Doe Jane MRN-123456"}))) == {"description"}
    assert identifying_metadata(_jpeg(exif=_exif({}, {0x9286: b"ASCII\x00\x00\x00Jane at home"}))) == {"description"}
    assert identifying_metadata(_jpeg(exif=_exif({0x9C9D: "Jane".encode("utf-16le") + b"\x00\x00"}))) == {"artist"}
    # what cameras and ImageJ write by themselves, and blanks, say nothing of a person
    for text in ("OLYMPUS DIGITAL CAMERA", "   ", "ImageJ=1.53t\nimages=5\n"):
        assert identifying_metadata(_jpeg(exif=_exif({0x010E: text}))) == set(), text
    assert identifying_metadata(_jpeg(exif=_exif({}, {0x9286: b"\x00" * 8 + b"   "}))) == set()


def test_jpeg_comments_and_xmp() -> None:
    assert identifying_metadata(_jpeg(comment=b"taken by Jane Doe at /home/jane")) == {"comments"}
    assert identifying_metadata(_jpeg(comment=b"CREATOR: gd-jpeg v1.0 (using IJG JPEG v62), quality = 90")) == set()
    assert identifying_metadata(_jpeg(xmp=XMP)) == {"xmp", "gps", "artist"}
    assert identifying_metadata(_jpeg(xmp=TOOL_XMP)) == set()


def test_webp_xmp_chunk() -> None:
    buf = io.BytesIO()
    _img().save(buf, "WEBP", xmp=XMP)
    assert identifying_metadata(buf.getvalue()) == {"xmp", "gps", "artist"}


def test_wav_bext_ixml_and_id3_chunks() -> None:
    ixml = b"<BWFXML><LOCATION><LOCATION_NAME>Jane home, 12 Elm St</LOCATION_NAME></LOCATION></BWFXML>"
    assert identifying_metadata(_wav_with((b"bext", _bext(b"Field recording by Jane Doe")))) == {"bwf"}
    assert identifying_metadata(_wav_with((b"iXML", ixml))) == {"bwf"}
    assert identifying_metadata(_wav_with((b"bext", _bext()), (b"iXML", b"<BWFXML><NOTE></NOTE></BWFXML>"))) == set()
    encoder_only = b"ID3\x03\x00\x00\x00\x00\x00\x14TSSE\x00\x00\x00\x06\x00\x00\x00Lavf6"
    info = b"INFO" + b"IART" + (8).to_bytes(4, "little") + b"Jane Doe"
    # an id3 chunk of the encoder's name alone no longer ends the walk before the LIST/INFO chunk after it
    assert identifying_metadata(_wav_with((b"id3 ", encoder_only), (b"LIST", info))) == {"audio_tags"}
    assert identifying_metadata(_wav_with((b"id3 ", encoder_only))) == set()


def _hostile_variants(data: bytes, rnd: random.Random) -> list[bytes]:
    out = [data[:k] for k in range(0, len(data), max(1, len(data) // 40))]
    for _ in range(60):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.choice((0, 0xFF, rnd.randrange(256)))
        out.append(bytes(b))
    return out


def test_hostile_bytes_raise_nothing() -> None:
    rnd = random.Random(42)
    ex = _exif({0x010E: "x" * 300, 0x9C9D: "Jane".encode("utf-16le")}, {0x9286: b"ASCII\x00\x00\x00" + b"y" * 200})
    seeds = [_png(("tEXt", "PatientName", "Doe"), ("zTXt", "Comment", "c" * 500),
                  ("iTXt", "XML:com.adobe.xmp", XMP.decode())), _jpeg(exif=ex, xmp=XMP,
             comment=b"hi"), _wav_with((b"bext", _bext(b"d")), (b"iXML", b"<NOTE>n</NOTE>"))]
    buf = io.BytesIO()
    _img().save(buf, "WEBP", xmp=XMP, exif=ex)
    seeds.append(buf.getvalue())
    buf = io.BytesIO()
    _img().save(buf, "TIFF", exif=ex)
    seeds.append(buf.getvalue())
    for seed in seeds:
        for d in _hostile_variants(seed, rnd):
            assert identifying_metadata(d) <= set(mediainfo.IDENTIFYING_KINDS)
            assert image_frames(d) >= 1


def test_a_compressed_xmp_bomb_is_inflated_only_so_far() -> None:
    import zlib

    bomb = zlib.compress(b" " * (8 << 20) + b"<dc:creator>Jane</dc:creator>", 9)  # 8 MB of blanks first
    body = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + bomb
    png = _png()
    chunk = len(body).to_bytes(4, "big") + b"iTXt" + body + zlib.crc32(b"iTXt" + body).to_bytes(4, "big")
    at = png.find(b"IDAT") - 4
    assert identifying_metadata(png[:at] + chunk + png[at:]) == set()  # the creator lies past the bound


def test_the_card_counts_the_new_kinds(tmp_path: Path) -> None:
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    (src / "p.png").write_bytes(_png(("tEXt", "PatientName", "Doe^Jane")))
    (src / "c.jpg").write_bytes(_jpeg(comment=b"Jane Doe"))
    (src / "x.jpg").write_bytes(_jpeg(xmp=XMP))
    (src / "d.jpg").write_bytes(_jpeg(exif=_exif({0x010E: "Patient Doe"})))
    (src / "w.wav").write_bytes(_wav_with((b"bext", _bext(b"Field recording by Jane Doe"))))
    mmdata.shard(tmp_path / "src", tmp_path / "ds", progress=False)
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())["metadata"]
    assert {k: meta[k] for k in ("text_chunks", "comments", "xmp", "gps", "artist", "description", "bwf")} == \
        {"text_chunks": 1, "comments": 1, "xmp": 1, "gps": 1, "artist": 1, "description": 1, "bwf": 1}
    assert meta["examples"]["text_chunks"][0].startswith("a_p_") and meta["examples"]["bwf"][0].endswith(".wav")


# ---- images' values and frames --------------------------------------------------------------------------


def _tiff(arr: np.ndarray, mode: str | None = None, pages: int = 1) -> bytes:
    frames = [Image.fromarray(arr + i, mode) if mode else Image.fromarray(arr + i) for i in range(pages)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=pages > 1, append_images=frames[1:])
    return buf.getvalue()


def _png16(arr: np.ndarray) -> bytes:
    ok, enc = cv2.imencode(".png", np.asarray(arr).astype(np.uint16))
    assert ok
    return enc.tobytes()


def test_low_bit_images_are_counted_per_image_with_examples() -> None:
    acc = None
    for key, top in (("full", 65535), ("ct12", 4095), ("dark", 3000)):
        acc = mediainfo.merge_sixteen_bit(acc, image_depth(_png16(np.linspace(0, top, 64).reshape(8, 8))), key)
    w = mediainfo.sixteen_bit_warning(acc, 5)
    assert w == ("2 16-bit images (of 5) use at most 12 significant bits (max 4095 over them) (e.g. ct12, dark): "
                 "under the v >> 8 rule they decode nearly black (0-15 of 255); rescale (v << 4) before sharding")
    # the shards' parts combine; an older job's [count, min, max] still reads
    both = mediainfo.combine_sixteen_bit([acc, None, [1, 0, 200]])
    assert both["low"][:2] == [3, 4095] and mediainfo.sixteen_bit_warning(both, 6).startswith("3 16-bit images")


def test_sixteen_bit_colour_pngs_are_checked() -> None:
    d = _png16(np.random.default_rng(2).integers(0, 4096, (16, 16, 3)))
    assert mediainfo.sixteen_bit_candidates([d]) == [0]
    assert image_depth(d).kind == "16" and image_depth(d).high < 4096
    assert mediainfo.probe_image(d)[2] == "RGB"  # the index's mode is unchanged (Pillow's, as decoded)


def test_float_and_signed_images_outside_the_readers_range_are_warned() -> None:
    hu = np.linspace(-1000, 3000, 256, dtype=np.float32).reshape(16, 16)
    f = _tiff(hu, "F")
    s = _tiff(np.linspace(-1000, 3000, 256).reshape(16, 16).astype(np.int16))
    unit = _tiff(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16), "F")
    grey = _tiff(np.linspace(0, 255, 256, dtype=np.float32).reshape(16, 16), "F")
    assert mediainfo.sixteen_bit_candidates([f, s, unit]) == [0, 1, 2]
    assert image_depth(f) == DepthFacts("float", -1000.0, 3000.0, 1)
    assert image_depth(s).kind == "signed"
    acc = None
    for key, d in (("ct0", f), ("ct1", s), ("unit", unit), ("grey", grey)):
        acc = mediainfo.merge_sixteen_bit(acc, image_depth(d), key)
    (w,) = mediainfo.deep_warnings(acc, 4)
    assert w.startswith("2 float / signed images (of 4) hold values outside what the reader maps (-1000..3000 over "
                        "them) (e.g. ct0, ct1): ") and "clipped when read; rescale" in w
    assert mediainfo.is_deep_warning(w)


def test_several_frames_are_counted() -> None:
    stack = _tiff(np.full((16, 16), 40000, np.uint16), pages=5)  # full range: no dark-image warning (QA36)
    gif, apng = io.BytesIO(), io.BytesIO()
    frames = [Image.new("RGB", (8, 8), (j * 60, j * 30, 0)) for j in range(4)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    frames[0].save(apng, "PNG", save_all=True, append_images=frames[1:3])
    still = _png16(np.full((8, 8), 40000))
    assert [image_frames(d) for d in (stack, gif.getvalue(), apng.getvalue(), still)] == [5, 4, 3, 1]
    datas = [stack, gif.getvalue(), apng.getvalue(), _jpeg()]
    assert mediainfo.sixteen_bit_candidates(datas) == [0, 1, 2]
    acc = None
    for key, d in zip("abcd", datas):
        acc = mediainfo.merge_sixteen_bit(acc, image_depth(d), key)
    assert mediainfo.deep_warnings(acc, 4) == [
        "3 images (of 4) hold several frames / pages (up to 5) (e.g. a, b, c): the reader reads the first only; "
        "split the pages into files (or samples) before sharding to keep them"]


@pytest.mark.parametrize("data", [b"II*\x00" + b"\xff" * 12, b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x08",
                                  b"GIF89a" + bytes(7) + b"\x2c" * 20, b"RIFF\x00\x00\x00\x00WEBPVP8X\x02"])
def test_frame_counts_of_hostile_headers(data: bytes) -> None:
    assert image_frames(data) >= 1
    assert image_depth(data) is None or image_depth(data).frames >= 1


# ---- review rev-shardin #6: XMP properties that say nothing, namespaces by URI, APNG frame counts ----------

#: what macOS writes into every screenshot PNG (its iTXt ``XML:com.adobe.xmp`` chunk)
MACOS_SCREENSHOT_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 6.0.0">\n'
    '   <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    '      <rdf:Description rdf:about=""\n            xmlns:exif="http://ns.adobe.com/exif/1.0/">\n'
    '         <exif:PixelYDimension>1050</exif:PixelYDimension>\n'
    '         <exif:PixelXDimension>1680</exif:PixelXDimension>\n'
    '         <exif:UserComment>Screenshot</exif:UserComment>\n'
    '      </rdf:Description>\n   </rdf:RDF>\n</x:xmpmeta>\n')
DC = b'xmlns:dc="http://purl.org/dc/elements/1.1/"'
RDF = b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'


def _packet(body: bytes, ns: bytes = DC) -> bytes:
    return b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF ' + RDF + b'><rdf:Description rdf:about="" ' + ns + b'>' + \
        body + b'</rdf:Description></rdf:RDF></x:xmpmeta>'


def test_empty_xmp_properties_say_nothing() -> None:
    for body in (b"<dc:creator/>", b"<dc:creator></dc:creator>", b"<dc:creator>  \n </dc:creator>",
                 b"<dc:creator><rdf:Seq><rdf:li/></rdf:Seq></dc:creator>",
                 b"<dc:creator><rdf:Seq><rdf:li>&#10;</rdf:li></rdf:Seq></dc:creator>",
                 b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default"></rdf:li></rdf:Alt></dc:title>'):
        assert mediainfo.xmp_identifying(_packet(body)) == set(), body
    assert mediainfo.xmp_identifying(b'<rdf:Description><dc:creator/></rdf:Description>') == set()  # the review's
    assert mediainfo.xmp_identifying(_packet(b"", DC + b' dc:creator=""')) == set()
    # one that names someone still counts, in a sequence, as an attribute, as a resource
    assert mediainfo.xmp_identifying(_packet(b"<dc:creator><rdf:Seq><rdf:li/><rdf:li>Jane Doe</rdf:li></rdf:Seq>"
                                             b"</dc:creator>")) == {"xmp", "artist"}
    assert mediainfo.xmp_identifying(_packet(b"", DC + b" dc:creator='Jane Doe'")) == {"xmp", "artist"}
    assert mediainfo.xmp_identifying(_packet(b'<dc:creator rdf:resource="https://example.org/jane"/>')) == \
        {"xmp", "artist"}


def test_default_descriptions_say_nothing_but_real_ones_do() -> None:
    shot = _png(("iTXt", "XML:com.adobe.xmp", MACOS_SCREENSHOT_XMP))
    assert identifying_metadata(shot) == set()
    ex = "http://ns.adobe.com/exif/1.0/"
    for text in (b"Screenshot", b"screen shot", b"Untitled", b"  OLYMPUS DIGITAL CAMERA  ", b"image"):
        body = b"<exif:UserComment><rdf:Alt><rdf:li xml:lang='x-default'>" + text + b"</rdf:li></rdf:Alt>" \
               b"</exif:UserComment><dc:title>" + text + b"</dc:title>"
        assert mediainfo.xmp_identifying(_packet(body, DC + f' xmlns:exif="{ex}"'.encode())) == set(), text
    for text in (b"Jane at the clinic", b"Screenshot of Jane Doe's chart", b"Doe"):
        assert mediainfo.xmp_identifying(_packet(b"<dc:description>" + text + b"</dc:description>")) == {"xmp"}, text
    # a keyword bag: one real keyword among defaults counts
    assert mediainfo.xmp_identifying(_packet(b"<dc:subject><rdf:Bag><rdf:li>Screenshot</rdf:li><rdf:li>Station 4"
                                             b"</rdf:li></rdf:Bag></dc:subject>")) == {"xmp"}
    # the same rule for EXIF's own free text (a PNG eXIf chunk of a screenshot tool)
    assert identifying_metadata(_jpeg(exif=_exif({}, {0x9286: b"ASCII\x00\x00\x00Screenshot"}))) == set()
    assert identifying_metadata(_jpeg(exif=_exif({0x010E: "Untitled"}))) == set()


def test_xmp_properties_are_matched_by_namespace_not_prefix() -> None:
    other = b'xmlns:d="http://purl.org/dc/elements/1.1/" xmlns:g="http://ns.adobe.com/exif/1.0/"'
    assert mediainfo.xmp_identifying(_packet(b"<d:creator>Jane</d:creator>", other)) == {"xmp", "artist"}
    assert mediainfo.xmp_identifying(_packet(b"", other + b' g:GPSLatitude="52,31.2N"')) == {"xmp", "gps"}
    assert mediainfo.xmp_identifying(b'<d:creator xmlns:d="http://purl.org/dc/elements/1.1/">Jane</d:creator>') == \
        {"xmp", "artist"}
    assert mediainfo.xmp_identifying(b'<creator xmlns="http://purl.org/dc/elements/1.1/">Jane</creator>') == \
        {"xmp", "artist"}
    # the usual prefix bound to another namespace is not Dublin Core's creator
    assert mediainfo.xmp_identifying(_packet(b"<dc:creator>Jane</dc:creator>",
                                             b'xmlns:dc="http://example.org/not-dublin-core/"')) == set()
    # IPTC's digital source type is what a generator writes about itself, not a person or a place
    iptc = b'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    assert mediainfo.xmp_identifying(_packet(b"<Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/"
                                             b"digitalsourcetype/trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>",
                                             iptc)) == set()
    assert mediainfo.xmp_identifying(_packet(b"<Iptc4xmpExt:PersonInImage><rdf:Bag><rdf:li>Jane Doe</rdf:li>"
                                             b"</rdf:Bag></Iptc4xmpExt:PersonInImage>", iptc)) == {"xmp"}


def test_ordinary_files_carry_nothing(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    fig.savefig(tmp_path / "plot.png")
    fig.savefig(tmp_path / "plot.jpg")
    plt.close(fig)
    arr = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    camera = _jpeg(exif=_exif({0x010F: "OLYMPUS IMAGING CORP.", 0x0110: "E-M10", 0x0131: "Version 1.2",
                                0x0132: "2026:01:01 12:00:00", 0x010E: "OLYMPUS DIGITAL CAMERA"},
                               {0x829A: (1, 60), 0x9286: b"\x00" * 8 + b" " * 40}),
                   xmp=_packet(b"<xmp:CreatorTool>E-M10 Ver.1.2</xmp:CreatorTool><tiff:Make>OLYMPUS</tiff:Make>"
                               b"<exif:DateTimeOriginal>2026-01-01T12:00:00</exif:DateTimeOriginal>"
                               b"<dc:format>image/jpeg</dc:format><xmpMM:DocumentID>xmp.did:1</xmpMM:DocumentID>",
                               b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
                               b'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
                               + DC))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "WEBP")
    files = [camera, _png(), _jpeg(), buf.getvalue(), (tmp_path / "plot.png").read_bytes(),
             (tmp_path / "plot.jpg").read_bytes(), cv2.imencode(".png", arr)[1].tobytes(),
             cv2.imencode(".jpg", arr)[1].tobytes(), _png(("iTXt", "XML:com.adobe.xmp", MACOS_SCREENSHOT_XMP))]
    assert [identifying_metadata(d) for d in files] == [set()] * len(files)


def _apng_with_declared(frames: int, declared: int) -> bytes:
    import zlib

    buf = io.BytesIO()
    images = [Image.new("RGB", (8, 8), (j * 60, 0, 0)) for j in range(frames)]
    images[0].save(buf, "PNG", save_all=True, append_images=images[1:])
    d = bytearray(buf.getvalue())
    at = d.find(b"acTL")
    d[at + 4:at + 8] = declared.to_bytes(4, "big")
    d[at + 12:at + 16] = zlib.crc32(bytes(d[at:at + 12])).to_bytes(4, "big")
    return bytes(d)


def test_an_apng_frame_count_is_the_frames_its_chunks_hold() -> None:
    hostile = _apng_with_declared(3, 0xFFFFFFFF)
    assert image_frames(_apng_with_declared(3, 3)) == 3
    assert image_frames(hostile) == 3  # three fcTL chunks, whatever acTL declares
    assert image_frames(_apng_with_declared(3, 2)) == 2  # the reader plays what acTL declares
    assert image_depth(hostile).frames == 3
    (w,) = mediainfo.deep_warnings(mediainfo.merge_sixteen_bit(None, image_depth(hostile), "k"), 1)
    assert "(up to 3)" in w and "4294967295" not in w
    # an acTL chunk with no frame control chunks after it: a still image as far as the count goes
    still = _png()
    at = still.find(b"IDAT") - 4
    actl = b"acTL" + (0xFFFFFFFF).to_bytes(4, "big") + bytes(4)
    import zlib
    assert image_frames(still[:at] + (8).to_bytes(4, "big") + actl + zlib.crc32(actl).to_bytes(4, "big")
                        + still[at:]) == 1
