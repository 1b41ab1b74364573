"""Tests of flask_fs.images: every input is generated with Pillow, every check decodes the output."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps, ImageStat
from werkzeug.datastructures import FileStorage

from flask_fs import images
from flask_fs.errors import FSError, ImageError, ImageTooLarge, InvalidImage

RED, GREEN, BLUE, YELLOW, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 255, 255)


@pytest.fixture(autouse=True, params=["pillow", "vips"])
def engine(request):
    """Every test runs with Pillow alone, and with libvips rendering what it takes (JPEG photos)."""
    if request.param == "vips" and images.pyvips is None:
        pytest.skip("pyvips is not installed (pip install flask-fs[vips])")
    images.use_engine(request.param)
    yield request.param
    images.use_engine("auto")


JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decode(data: io.BytesIO | bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data.getvalue() if isinstance(data, io.BytesIO) else data))
    image.load()
    return image


def assert_colour(pixel, expected, tolerance=40):
    assert all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False)), (pixel, expected)


def quadrants(size: int = 200) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    half = size // 2
    draw.rectangle((0, 0, half - 1, half - 1), fill=RED)
    draw.rectangle((half, 0, size, half - 1), fill=GREEN)
    draw.rectangle((0, half, half - 1, size), fill=BLUE)
    draw.rectangle((half, half, size, size), fill=YELLOW)
    return image


def stripes(width: int, height: int, colours) -> Image.Image:
    """Vertical stripes of equal width, one per colour, left to right."""
    image = Image.new("RGB", (width, height))
    step = width // len(colours)
    for i, colour in enumerate(colours):
        image.paste(colour, (i * step, 0, (i + 1) * step, height))
    return image


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (the data is only 1 pixel)."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


# -- formats ---------------------------------------------------------------------------------------------


def test_jpeg_thumbnail_is_a_square_jpeg(tmp_path):
    path = tmp_path / "photo.jpg"
    stripes(300, 200, [RED, GREEN, BLUE]).save(path, "JPEG", quality=95)

    out = images.make_thumbnail(str(path), 100)

    data = out.getvalue()
    assert data.startswith(JPEG_MAGIC)
    thumb = decode(data)
    assert (thumb.format, thumb.size, thumb.mode) == ("JPEG", (100, 100), "RGB")


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_thumbnail_keeps_the_source_format(fmt):
    source = encode(stripes(240, 120, [RED, GREEN, BLUE]), fmt)

    thumb = decode(images.make_thumbnail(source, 48))

    assert thumb.format == fmt
    assert thumb.size == (48, 48)
    assert_colour(thumb.convert("RGB").getpixel((24, 24)), GREEN)


def test_accepts_path_bytes_and_file_objects(tmp_path):
    path = tmp_path / "a.png"
    quadrants().save(path)
    stream = open(path, "rb")  # noqa: SIM115
    stream.read()  # at the end: the pipeline must read from the start anyway
    with stream:
        for source in (path, str(path), path.read_bytes(), stream):
            assert decode(images.make_thumbnail(source, 10)).size == (10, 10)


def test_accepts_a_werkzeug_upload():
    upload = FileStorage(io.BytesIO(encode(quadrants(), "JPEG")), filename="me.jpg", content_type="image/jpeg")

    result = images.render_all(upload, [20], max_size=50)

    assert decode(result.thumbnails[20]).size == (20, 20)
    assert decode(result.main).size == (50, 50)


def test_format_extension():
    assert images.format_extension("JPEG") == "jpg"
    assert images.format_extension("MPO") == "jpg"
    assert images.format_extension("PNG") == "png"
    assert images.format_extension("WEBP") == "webp"
    assert images.format_extension("GIF") == "gif"
    assert images.format_extension("TIFF") == "tiff"


# -- geometry --------------------------------------------------------------------------------------------


def test_thumbnail_crops_the_centre_square():
    source = encode(stripes(300, 100, [RED, GREEN, BLUE]), "PNG")

    thumb = decode(images.make_thumbnail(source, 50)).convert("RGB")

    for x in (2, 25, 47):  # the whole thumbnail is the green middle third
        assert_colour(thumb.getpixel((x, 25)), GREEN, tolerance=10)


@pytest.mark.parametrize(
    ("bbox", "colour"),
    [
        ((0, 0, 100, 100), RED),
        ((100, 0, 200, 100), GREEN),
        ((0, 100, 100, 200), BLUE),
        ((100, 100, 200, 200), YELLOW),
        ((110, 120, 190, 180), YELLOW),  # not square: its centre square is used
    ],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_bbox_selects_the_region(bbox, colour, fmt):
    source = encode(quadrants(), fmt, **({"quality": 95} if fmt == "JPEG" else {}))

    thumb = decode(images.make_thumbnail(source, 40, bbox=bbox))

    assert thumb.size == (40, 40)
    for xy in ((5, 5), (20, 20), (34, 34)):
        assert_colour(thumb.getpixel(xy), colour)


def test_bbox_outside_the_image_is_refused():
    with pytest.raises(ValueError):
        images.make_thumbnail(encode(quadrants(), "PNG"), 40, bbox=(300, 300, 400, 400))


@pytest.mark.parametrize(("source_size", "expected"), [((200, 100), (200, 100)), ((400, 200), (100, 50))])
def test_resize_fits_and_never_upscales(source_size, expected):
    source = encode(Image.new("RGB", source_size, BLUE), "JPEG")

    out = decode(images.resize(source, 100 if source_size[0] == 400 else 500))

    assert (out.format, out.size) == ("JPEG", expected)
    assert_colour(out.getpixel((10, 10)), BLUE)


def test_exif_orientation_is_applied_and_removed(tmp_path):
    image = stripes(200, 100, [RED, BLUE])  # stored sideways: displayed rotated 90 degrees clockwise
    exif = image.getexif()
    exif[ORIENTATION] = 6
    path = tmp_path / "rotated.jpg"
    image.save(path, "JPEG", exif=exif, quality=95)

    out = decode(images.resize(path, 1000))
    assert out.size == (100, 200)  # portrait, as displayed
    assert_colour(out.getpixel((50, 10)), RED)  # the stored left edge is the displayed top
    assert_colour(out.getpixel((50, 190)), BLUE)
    assert out.getexif().get(ORIENTATION, 1) == 1  # no viewer rotates it a second time

    top = decode(images.make_thumbnail(path, 20, bbox=(0, 0, 100, 100)))  # bbox in displayed pixels
    assert_colour(top.getpixel((10, 10)), RED)
    assert images.render_all(path, [20]).size == (100, 200)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_a_full_decode(orientation):
    image = Image.new("RGB", (1600, 800))
    image.paste(quadrants(800).resize((800, 800)), (0, 0))
    image.paste(stripes(800, 800, [YELLOW, BLUE]), (800, 0))
    exif = image.getexif()
    exif[ORIENTATION] = orientation
    source = encode(image, "JPEG", exif=exif, quality=95)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(source)))
    side = min(upright.size)
    left, top = (upright.width - side) // 2, (upright.height - side) // 2
    bbox = (left, top, left + side // 2, top + side // 2)
    expected = upright.resize((40, 40), Image.Resampling.LANCZOS, box=bbox)

    thumb = decode(images.make_thumbnail(source, 40, bbox=bbox))  # decoded at reduced scale

    assert images.render_all(source, []).size == upright.size
    diff = ImageStat.Stat(ImageChops.difference(thumb, expected)).mean
    assert max(diff) < 6, diff


# -- colour modes ----------------------------------------------------------------------------------------


def test_png_alpha_is_kept():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (50, 0, 100, 100))

    thumb = decode(images.make_thumbnail(encode(image, "PNG"), 20))

    assert thumb.mode == "RGBA"
    assert thumb.getpixel((2, 10))[3] == 0
    assert thumb.getpixel((17, 10)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_kept(fmt):
    image = Image.new("P", (80, 80), 1)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    image.paste(2, (40, 0, 80, 80))  # blue right half, transparent (index 1 = red) left half
    source = encode(image, fmt, transparency=1)

    thumb = decode(images.make_thumbnail(source, 16)).convert("RGBA")

    assert thumb.getpixel((2, 8))[3] == 0
    assert_colour(thumb.getpixel((13, 8)), (0, 0, 255, 255), tolerance=10)


def test_alpha_flattened_on_white_where_format_has_no_alpha():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (5, 0, 10, 10))

    out = decode(images._encode(image, "JPEG", False, None))

    assert out.mode == "RGB"
    assert_colour(out.getpixel((1, 5)), WHITE)  # not black
    assert_colour(out.getpixel((8, 5)), BLUE)


def test_cmyk_jpeg_colours():
    source = encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red ink

    thumb = decode(images.make_thumbnail(source, 32))

    assert thumb.format == "JPEG"
    assert thumb.mode == "RGB"
    assert_colour(thumb.getpixel((16, 16)), RED)


def test_icc_profile_is_kept():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encode(Image.new("RGB", (64, 64), GREEN), "JPEG", icc_profile=profile)

    thumb = decode(images.make_thumbnail(source, 16))

    assert thumb.info.get("icc_profile") == profile


def test_16_bit_grey_png_is_scaled_not_clipped():
    image = Image.new("I;16", (40, 40), 32896)  # 50% grey in 16 bits

    thumb = decode(images.make_thumbnail(encode(image, "PNG"), 10))

    assert thumb.format == "PNG"
    assert 120 <= thumb.convert("L").getpixel((5, 5)) <= 136


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (60, 60), RED), Image.new("RGB", (60, 60), BLUE)]
    source = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)

    thumb = decode(images.make_thumbnail(source, 20))

    assert thumb.format == "GIF"
    assert_colour(thumb.convert("RGB").getpixel((10, 10)), RED, tolerance=10)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_webp_round_trip(mode):
    image = Image.new(mode, (120, 80), (0, 128, 255, 255)[: len(mode)])
    source = encode(image, "WEBP", quality=90)

    thumb = decode(images.make_thumbnail(source, 40))
    main = decode(images.resize(source, 60))

    assert (thumb.format, thumb.size) == ("WEBP", (40, 40))
    assert (main.format, main.size) == ("WEBP", (60, 40))
    assert_colour(thumb.convert("RGB").getpixel((20, 20)), (0, 128, 255), tolerance=12)


# -- optimize and render_all -----------------------------------------------------------------------------


def test_optimize_keeps_format_and_size():
    photo = Image.radial_gradient("L").resize((400, 300)).convert("RGB")

    jpeg = decode(images.optimize(encode(photo, "JPEG", quality=95)))
    png_source = encode(photo, "PNG")
    png = images.optimize(png_source)

    assert (jpeg.format, jpeg.size) == ("JPEG", (400, 300))
    assert jpeg.info.get("progressive") or jpeg.info.get("progression")
    assert decode(png).tobytes() == photo.tobytes()  # lossless
    assert len(png.getvalue()) <= len(png_source)


def test_render_all_outputs():
    source = encode(quadrants(800), "JPEG", quality=90)

    result = images.render_all(source, [32, 100, 200], max_size=300)

    assert (result.format, result.extension, result.mimetype, result.size) == (
        "JPEG",
        "jpg",
        "image/jpeg",
        (800, 800),
    )
    assert {size: decode(out).size for size, out in result.thumbnails.items()} == {
        32: (32, 32),
        100: (100, 100),
        200: (200, 200),
    }
    assert decode(result.main).size == (300, 300)
    assert_colour(decode(result.thumbnails[32]).getpixel((4, 4)), RED)
    assert_colour(decode(result.thumbnails[32]).getpixel((28, 28)), YELLOW)


def test_render_all_main_only_when_something_changes():
    source = encode(quadrants(200), "PNG")

    assert images.render_all(source, [50], max_size=500).main is None
    assert decode(images.render_all(source, [50], max_size=500, optimize=True).main).size == (200, 200)
    assert decode(images.render_all(source, [50], square=False, max_size=100).thumbnails[50]).size == (50, 50)


def test_render_all_decodes_a_big_jpeg_once_at_reduced_scale(monkeypatch, engine):
    if engine == "vips":
        pytest.skip("watches Pillow's decoder")
    source = encode(quadrants(2000), "JPEG", quality=90)
    decoders = []
    original = Image._getdecoder

    def spy(mode, decoder_name, args, extra=()):
        decoders.append((decoder_name, extra))
        return original(mode, decoder_name, args, extra)

    monkeypatch.setattr(Image, "_getdecoder", spy)
    result = images.render_all(source, [32, 100, 200], max_size=400)

    assert [name for name, _ in decoders] == ["jpeg"]  # one decode for every output
    assert decode(result.main).size == (400, 400)
    scale = decoders[0][1][0]  # the JPEG decoder's config is (DCT scale denominator, ...)
    assert scale == 2  # 1000 px decoded: still 2x the 400 px main image


def test_output_format_can_be_forced():
    source = encode(quadrants(200), "JPEG")

    result = images.render_all(source, [50], max_size=100, output_format="webp")

    assert (result.format, result.extension, result.mimetype) == ("WEBP", "webp", "image/webp")
    assert decode(result.thumbnails[50]).format == decode(result.main).format == "WEBP"
    with pytest.raises(ValueError):
        images.render_all(source, [50], output_format="NOPE")


def test_psd_like_unwritable_formats_fall_back_to_png():
    assert images._output_format("PSD", None) == "PNG"
    assert images._output_format("MPO", None) == "JPEG"


def test_non_square_thumbnails_fit_in_the_box():
    source = encode(Image.new("RGB", (300, 150), GREEN), "PNG")

    result = images.render_all(source, [100, 1000], square=False)

    assert decode(result.thumbnails[100]).size == (100, 50)
    assert decode(result.thumbnails[1000]).size == (300, 150)  # never enlarged


MODES = {
    "RGB": ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"],
    "RGBA": ["PNG", "WEBP", "TIFF"],
    "L": ["JPEG", "PNG", "GIF", "BMP"],
    "LA": ["PNG"],
    "P": ["PNG", "GIF", "BMP"],
    "1": ["PNG", "BMP"],
    "I;16": ["PNG"],
    "CMYK": ["JPEG", "TIFF"],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 260),
    height=st.integers(1, 260),
    mode_format=st.sampled_from([(mode, fmt) for mode, fmts in MODES.items() for fmt in fmts]),
    sizes=st.lists(st.integers(1, 120), min_size=1, max_size=3, unique=True),
    max_size=st.integers(1, 300),
)
def test_any_image_gives_outputs_of_the_right_size(width, height, mode_format, sizes, max_size):
    mode, fmt = mode_format
    source = encode(Image.new(mode, (width, height)), fmt)

    result = images.render_all(source, sizes, max_size=max_size)

    assert result.format == fmt
    for size, out in result.thumbnails.items():
        thumb = decode(out)
        assert (thumb.format, thumb.size) == (fmt, (size, size))
    if max(width, height) <= max_size:
        assert result.main is None
    else:
        main = decode(result.main)
        ratio = max_size / max(width, height)
        assert main.format == fmt
        assert max(main.size) == max_size
        assert abs(main.width - width * ratio) <= 1 and abs(main.height - height * ratio) <= 1


# -- broken and oversized input --------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    data = encode(Image.effect_noise((400, 300), 40).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = encode(Image.effect_noise((300, 300), 40), "PNG")
    return data[: len(data) // 2]


BROKEN = {
    "random bytes": os.urandom(2048),
    "empty": b"",
    "text": b"GIF89a but not really an image",
    "truncated jpeg": truncated_jpeg(),
    "truncated png": truncated_png(),
}
CALLS = {
    "open_image": lambda f: images.open_image(f),
    "make_thumbnail": lambda f: images.make_thumbnail(f, 50),
    "resize": lambda f: images.resize(f, 50),
    "optimize": lambda f: images.optimize(f),
    "render_all": lambda f: images.render_all(f, [16, 50], max_size=100),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("data", BROKEN.values(), ids=BROKEN.keys())
def test_broken_input_raises_invalid_image(data, call):
    with pytest.raises(InvalidImage) as caught:
        call(io.BytesIO(data))

    assert isinstance(caught.value, ImageError)
    assert isinstance(caught.value, FSError)
    assert isinstance(caught.value, ValueError)


def test_truncated_jpeg_from_a_path(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(truncated_jpeg())

    with pytest.raises(InvalidImage):
        images.make_thumbnail(path, 10)  # decoded at 1/8 scale: still noticed


def test_missing_file_is_not_an_image_error(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        images.make_thumbnail(tmp_path / "nope.jpg", 10)
    assert not isinstance(caught.value, ImageError)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("declared", "limit"),
    [
        ((10_000, 10_000), None),  # 100 MP: past the default limit
        ((40_000, 40_000), None),  # past Pillow's own hard limit too
        ((300, 300), 10_000),  # past a configured limit
    ],
)
def test_too_many_pixels_raises_image_too_large(declared, limit):
    data = png_declaring(*declared)

    with pytest.raises(ImageTooLarge):
        images.open_image(io.BytesIO(data), max_pixels=limit)
    with pytest.raises(ImageTooLarge):
        images.render_all(io.BytesIO(data), [10], max_pixels=limit)


def test_pixel_limit_allows_images_within_it():
    image = images.open_image(encode(Image.new("RGB", (100, 100), RED), "PNG"), max_pixels=10_000)

    assert image.size == (100, 100)
    assert image.getpixel((50, 50)) == RED


def test_libvips_renders_jpeg_photos_and_pillow_the_rest(monkeypatch, engine):
    calls = []
    original = images._vips_render
    monkeypatch.setattr(images, "_vips_render", lambda *args: calls.append(args[0].format) or original(*args))
    jpeg = images.render_all(encode(quadrants(800), "JPEG"), [100], max_size=300)
    png = images.render_all(encode(quadrants(800), "PNG"), [100])
    assert calls == (["JPEG"] if engine == "vips" else [])
    assert decode(jpeg.thumbnails[100]).size == (100, 100) and decode(jpeg.main).size == (300, 300)
    assert_colour(decode(jpeg.thumbnails[100]).getpixel((10, 10)), RED)
    assert decode(png.thumbnails[100]).format == "PNG"


def test_unknown_engines_are_refused(engine):
    from flask import Flask

    import flask_fs as fs
    from flask_fs.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="FS_IMAGES_ENGINE"):
        images.use_engine("magick")
    app = Flask(__name__)
    app.config["FS_IMAGES_ENGINE"] = "magick"
    with pytest.raises(ConfigurationError, match="FS_IMAGES_ENGINE"):
        fs.init_app(app)
