"""Image processing for image fields: validation, thumbnails, resizing and re-encoding with Pillow.

Every function takes a path, ``bytes`` or a binary file object (read from its start) and returns a
:class:`io.BytesIO` encoded in the source's own format (a JPEG stays a JPEG, a PNG stays a PNG...).
Invalid input raises :class:`~flask_fs.errors.InvalidImage`; an image with more pixels than allowed
raises :class:`~flask_fs.errors.ImageTooLarge`. Both are :class:`~flask_fs.errors.ImageError`.

:func:`render_all` decodes the source once (at a reduced JPEG scale when the outputs are much smaller
than the source) and renders every thumbnail from that single decode; the other functions are thin
wrappers over the same pipeline. The source's EXIF orientation is applied and EXIF metadata is not
copied to the outputs; an RGB ICC profile is kept, a CMYK one is used to convert to sRGB.

With the optional ``vips`` extra (pyvips and its libvips binary) the common case, 8-bit RGB or grey
JPEG photos rendered as JPEG, is decoded and resized by libvips, several times faster and in less
memory; everything else, and every check (format, pixel limit, EXIF orientation, sizes), stays
Pillow's. :func:`use_engine` (``FS_IMAGES_ENGINE``) chooses: ``"auto"``, ``"pillow"`` or ``"vips"``.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from PIL import Image, ImageOps

try:  # the optional accelerator: pip install flask-fs[vips]
    import pyvips
except (ImportError, OSError):  # not installed, or libvips missing
    pyvips = None

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without littlecms
    ImageCms = None

from .errors import ConfigurationError, ImageError, ImageTooLarge, InvalidImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ENGINES",
    "ImageError",
    "ImageTooLarge",
    "InvalidImage",
    "Renditions",
    "format_extension",
    "make_thumbnail",
    "open_image",
    "optimize",
    "render_all",
    "resize",
    "use_engine",
]

ImageSource = str | os.PathLike | bytes | IO[bytes]
BBox = tuple[float, float, float, float]

#: Pixel limit used when none is given (Pillow's own default ``Image.MAX_IMAGE_PIXELS``, ~89.5 MP).
#: Pillow still refuses images above twice its own limit, whatever ``max_pixels`` says.
DEFAULT_MAX_PIXELS = 89_478_485

#: JPEG sources are decoded at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling) while the decoded region
#: stays at least this many times larger than every output. On a noisy 12 MP photo the result is
#: within 42-50 dB PSNR of a full decode + LANCZOS: far less error than JPEG quality 85 adds.
DRAFT_MARGIN = 1.5
#: Pillow's ``reducing_gap``: box-reduce by an integer factor first, keeping this margin for LANCZOS.
REDUCING_GAP = 2.0

JPEG_QUALITY = 85
WEBP_QUALITY = 85
RESAMPLE = Image.Resampling.LANCZOS

# Formats whose outputs can carry an alpha channel; the others are flattened on white.
_ALPHA_FORMATS = {"PNG", "WEBP", "GIF", "TIFF"}
# Source formats written as another, more common one.
_OUTPUT_FORMAT = {"MPO": "JPEG"}
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
_ORIENTATION = 0x0112  # EXIF tag
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)

#: What :func:`use_engine` accepts: libvips when it is installed (``auto``), always Pillow, or libvips.
ENGINES = ("auto", "pillow", "vips")
_engine = {"name": "auto"}


def use_engine(name: str) -> None:
    """Choose who renders JPEG photos: ``"auto"`` (libvips if pyvips imports, else Pillow),
    ``"pillow"`` or ``"vips"`` (ConfigurationError when pyvips is not installed)."""
    if name not in ENGINES:
        raise ConfigurationError(f"FS_IMAGES_ENGINE must be one of {', '.join(ENGINES)}, not {name!r}")
    if name == "vips" and pyvips is None:
        raise ConfigurationError("FS_IMAGES_ENGINE = 'vips' needs pyvips: pip install flask-fs[vips]")
    _engine["name"] = name


@dataclass
class Renditions:
    """Everything :func:`render_all` produced from one source image."""

    format: str  #: Pillow format of every output (``"JPEG"``, ``"PNG"``...).
    size: tuple[int, int]  #: Source size in pixels, after EXIF orientation.
    main: io.BytesIO | None = None  #: Resized/optimized main image, or None if the source can be kept.
    thumbnails: dict[int, io.BytesIO] = field(default_factory=dict)  #: Thumbnail bytes by size.

    @property
    def extension(self) -> str:
        """File extension (without dot) matching :attr:`format`."""
        return format_extension(self.format)

    @property
    def mimetype(self) -> str:
        """MIME type matching :attr:`format`."""
        return Image.MIME.get(self.format, "application/octet-stream")


def format_extension(fmt: str) -> str:
    """Usual file extension (without dot, e.g. ``"jpg"``) for a Pillow format name."""
    fmt = _OUTPUT_FORMAT.get(fmt.upper(), fmt.upper())
    if fmt in _EXTENSIONS:
        return _EXTENSIONS[fmt]
    for ext, name in Image.registered_extensions().items():
        if name == fmt:
            return ext.lstrip(".")
    return fmt.lower()


def open_image(file: ImageSource, max_pixels: int | None = None) -> Image.Image:
    """Open, fully decode and validate an image, with its EXIF orientation applied.

    Raise :class:`InvalidImage` if ``file`` is not a decodable image (or is truncated) and
    :class:`ImageTooLarge` if it has more than ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`).
    The result is in mode L, LA, RGB or RGBA.
    """
    source = _open(file, max_pixels)
    try:
        image = _decode(source, 1.0)
    except BaseException:
        source.close()
        raise
    if image is not source:
        source.close()
    return image


def make_thumbnail(
    file: ImageSource,
    size: int,
    bbox: BBox | None = None,
    *,
    optimize: bool = False,
    max_pixels: int | None = None,
) -> io.BytesIO:
    """Square ``size`` px thumbnail, centre-cropped or cropped to ``bbox`` = (x1, y1, x2, y2) first.

    ``bbox`` is in pixels of the (EXIF-oriented) source; a non-square one is centre-cropped to a square.
    """
    return render_all(file, [size], bbox=bbox, optimize=optimize, max_pixels=max_pixels).thumbnails[size]


def resize(file: ImageSource, size: int, *, optimize: bool = False, max_pixels: int | None = None) -> io.BytesIO:
    """Re-encode the image scaled down to fit within ``size`` x ``size`` (never scaled up)."""
    result = render_all(file, [], max_size=size, optimize=optimize, max_pixels=max_pixels, keep_main=False)
    assert result.main is not None
    return result.main


def optimize(file: ImageSource, *, max_pixels: int | None = None) -> io.BytesIO:
    """Re-encode the image at full size with the format's size optimizations."""
    result = render_all(file, [], optimize=True, max_pixels=max_pixels, keep_main=False)
    assert result.main is not None
    return result.main


def render_all(
    file: ImageSource,
    sizes: list[int],
    *,
    square: bool = True,
    bbox: BBox | None = None,
    max_size: int | None = None,
    optimize: bool = False,
    max_pixels: int | None = None,
    keep_main: bool = True,
    output_format: str | None = None,
) -> Renditions:
    """Validate the source, decode it once and render every thumbnail (and the main image).

    Thumbnails are ``size`` px squares (see :func:`make_thumbnail`; smaller sources are enlarged), or fit
    within ``size`` x ``size`` when ``square`` is false (never enlarged). ``main`` is the source fitted
    within ``max_size`` and/or optimized, or None when that would change nothing and ``keep_main`` is
    true (store the original bytes as they are). ``output_format`` (a Pillow format name such as
    ``"WEBP"``) replaces the source's format for every output.
    """
    if any(s < 1 for s in sizes) or (max_size is not None and max_size < 1):
        raise ValueError("sizes must be positive")
    if output_format is not None:
        _output_format(None, output_format)  # fail on an unknown format before any work
    with _open(file, max_pixels) as source:
        with _decode_errors():
            width, height = _oriented_size(source)
        frame = (0.0, 0.0, float(width), float(height))
        crop = _square_box(frame, bbox) if square else _clamp(frame, bbox)
        crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
        # How much smaller than the source each output is: the decode may shrink by that / DRAFT_MARGIN.
        factors = [(min(crop_w, crop_h) if square else max(crop_w, crop_h)) / s for s in sizes]
        resize_main = max_size is not None and max(width, height) > max_size
        if resize_main:
            assert max_size is not None
            factors.append(max(width, height) / max_size)
        elif optimize or not keep_main:
            factors.append(1.0)  # the main image is re-encoded at full size
        fmt = _output_format(source.format, output_format)
        full_size_main = not resize_main and (optimize or not keep_main)  # re-encoded as it is: Pillow's
        if _vips_can(source, fmt) and not full_size_main:
            rendered = _vips_render(source, (width, height), crop, sizes, square, max_size if resize_main else None,
                                    min(factors, default=1.0) / DRAFT_MARGIN, optimize)  # fmt: skip
            if rendered is not None:
                result = Renditions(format=fmt, size=(width, height))
                result.thumbnails, result.main = rendered
                return result
        image = _decode(source, min(factors, default=1.0) / DRAFT_MARGIN)

        icc = image.info.get("icc_profile")
        sx, sy = image.width / width, image.height / height
        box = (crop[0] * sx, crop[1] * sy, min(crop[2] * sx, image.width), min(crop[3] * sy, image.height))
        result = Renditions(format=fmt, size=(width, height))
        for size in sizes:
            target = (size, size) if square else _fit(crop_w, crop_h, size)
            thumb = image.resize(target, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
            result.thumbnails[size] = _encode(thumb, fmt, optimize, icc)
        if resize_main:
            assert max_size is not None
            main = image.resize(_fit(width, height, max_size), RESAMPLE, reducing_gap=REDUCING_GAP)
            result.main = _encode(main, fmt, optimize, icc)
        elif optimize or not keep_main:
            result.main = _encode(image, fmt, optimize, icc)
    return result


def _vips_can(source: Image.Image, fmt: str) -> bool:
    """Whether libvips renders this source: a JPEG photo (8-bit RGB or grey) written as JPEG."""
    if pyvips is None or _engine["name"] == "pillow":
        return False
    return source.format == "JPEG" and fmt == "JPEG" and source.mode in ("RGB", "L")


def _vips_render(
    source: Image.Image,
    oriented: tuple[int, int],
    crop: BBox,
    sizes: list[int],
    square: bool,
    max_size: int | None,
    reduce: float,
    optimize: bool,
) -> tuple[dict[int, io.BytesIO], io.BytesIO | None] | None:
    """The thumbnails (and the main image fitted in ``max_size``) rendered by libvips, with the
    sizes, crop and orientation Pillow's path gives; None to leave the work to Pillow."""
    fp = source.fp
    if fp is None:
        return None
    fp.seek(0)
    data = fp.read()
    shrink = 8 if reduce >= 8 else 4 if reduce >= 4 else 2 if reduce >= 2 else 1
    width, height = oriented
    try:
        image = pyvips.Image.new_from_buffer(data, "", shrink=shrink, fail_on="truncated").autorot()
        if (image.width > image.height) != (width > height) and image.width != image.height:
            return None  # libvips read another orientation than Pillow: let Pillow decide
        icc = image.get("icc-profile-data") if image.get_typeof("icc-profile-data") else None
        keep = "icc" if icc else "none"
        options = {"Q": JPEG_QUALITY, "optimize_coding": optimize, "interlace": optimize, "keep": keep}
        sx, sy = image.width / width, image.height / height
        left, top = crop[0] * sx, crop[1] * sy
        right, bottom = min(crop[2] * sx, image.width), min(crop[3] * sy, image.height)
        region = image.crop(int(left), int(top), max(1, round(right - int(left))), max(1, round(bottom - int(top))))
        crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
        thumbnails = {}
        for size in sizes:
            tw, th = (size, size) if square else _fit(crop_w, crop_h, size)
            thumb = region.thumbnail_image(tw, height=th, size="force")
            thumbnails[size] = io.BytesIO(thumb.jpegsave_buffer(**options))
        main = None
        if max_size is not None:
            mw, mh = _fit(width, height, max_size)
            main = io.BytesIO(image.thumbnail_image(mw, height=mh, size="force").jpegsave_buffer(**options))
    except pyvips.Error as exc:
        raise InvalidImage(f"not a valid image: {str(exc).strip().splitlines()[-1]}") from exc
    return thumbnails, main


def _output_format(source_format: str | None, requested: str | None) -> str:
    """Format to write: ``requested``, else the source's (PNG if Pillow cannot write that one)."""
    Image.init()  # register every plugin, so that Image.SAVE is complete
    if requested is not None:
        if requested.upper() not in Image.SAVE:
            raise ValueError(f"Pillow cannot write {requested!r} images")
        return requested.upper()
    fmt = _OUTPUT_FORMAT.get(source_format or "", source_format or "PNG")
    return fmt if fmt in Image.SAVE else "PNG"


@contextmanager
def _decode_errors() -> Iterator[None]:
    """Turn Pillow's and the codecs' exceptions into :class:`InvalidImage` / :class:`ImageTooLarge`."""
    try:
        yield
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from exc
    except _DECODE_ERRORS as exc:  # UnidentifiedImageError is an OSError
        raise InvalidImage(f"not a valid image: {exc}") from exc


def identify(file: ImageSource, max_pixels: int | None = None) -> str:
    """The Pillow format of an image, read from its header only (no decoding), after checking its
    pixel count: InvalidImage or ImageTooLarge otherwise. A file broken past its header passes."""
    image = _open(file, max_pixels)
    return str(image.format)  # not closed: that would close the caller's file too


def _open(file: ImageSource, max_pixels: int | None) -> Image.Image:
    """Identify the image from its header (no decoding) and check its pixel count."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        file = io.BytesIO(file)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    with _decode_errors():
        image = Image.open(file)
    if image.width * image.height > limit:
        image.close()
        raise ImageTooLarge(f"image is {image.width}x{image.height} pixels, more than the {limit} allowed")
    return image


def _decode(image: Image.Image, reduce: float) -> Image.Image:
    """Fully decode ``image``, at a JPEG scale reduced by up to ``reduce`` (DCT scaling: 1/2 to 1/8).

    Return it oriented and in a mode every resample filter and encoder handles (L, LA, RGB, RGBA).
    """
    with _decode_errors():
        if reduce >= 2:
            image.draft(None, (math.ceil(image.width / reduce), math.ceil(image.height / reduce)))
        image.load()  # a truncated file fails here: Pillow's LOAD_TRUNCATED_IMAGES stays off
        if image.getexif().get(_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        return _normalize(image)


def _normalize(image: Image.Image) -> Image.Image:
    """Convert to L, LA, RGB or RGBA (the modes every resample filter and encoder handle)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA") and "transparency" not in image.info:
        return image
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode.startswith("I") or mode == "F":
        # 16/32-bit grey: map to 8 bits instead of clipping everything above 255 to white.
        image = image.convert("I") if mode.startswith("I;16") else image
        if image.getextrema()[1] > 255:
            image = image.point(lambda v: v / 256)
        return image.convert("L")
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in image.info
    grey = mode in ("1", "L", "LA", "La")
    converted = image.convert(("LA" if grey else "RGBA") if has_alpha else ("L" if grey else "RGB"))
    converted.info.pop("transparency", None)  # now carried by the alpha channel
    return converted


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """Convert CMYK to sRGB through the embedded ICC profile when there is one."""
    icc = image.info.get("icc_profile")
    if icc and ImageCms is not None:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                converted.info.pop("icc_profile", None)
                return converted
        except (OSError, ImageCms.PyCMSError):
            pass
    converted = image.convert("RGB")
    converted.info.pop("icc_profile", None)
    return converted


def _encode(image: Image.Image, fmt: str, optimize: bool, icc: bytes | None) -> io.BytesIO:
    """Encode ``image`` as ``fmt``, flattening alpha on white for formats without transparency."""
    if image.mode in ("LA", "RGBA") and fmt not in _ALPHA_FORMATS:
        background = Image.new(image.mode[:-1], image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    options: dict = {"optimize": optimize}
    if fmt == "JPEG":
        options.update(quality=JPEG_QUALITY, progressive=optimize)
    elif fmt == "WEBP":
        options.update(quality=WEBP_QUALITY, method=6 if optimize else 4)
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    image.save(out, fmt, **options)
    out.seek(0)
    return out


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    """Size of the image once its EXIF orientation is applied, read from the header only."""
    orientation = image.getexif().get(_ORIENTATION, 1)
    return (image.height, image.width) if orientation in (5, 6, 7, 8) else (image.width, image.height)


def _clamp(frame: BBox, bbox: BBox | None) -> BBox:
    """``bbox`` clipped to ``frame`` (or ``frame`` itself without bbox)."""
    if bbox is None:
        return frame
    x1, y1, x2, y2 = (float(v) for v in bbox)
    box = (max(x1, frame[0]), max(y1, frame[1]), min(x2, frame[2]), min(y2, frame[3]))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"bbox {tuple(bbox)} does not overlap the {frame[2]:g}x{frame[3]:g} image")
    return box


def _square_box(frame: BBox, bbox: BBox | None) -> BBox:
    """Largest centred square inside ``bbox`` (clipped to ``frame``), or inside ``frame``."""
    x1, y1, x2, y2 = _clamp(frame, bbox)
    side = min(x2 - x1, y2 - y1)
    left, top = x1 + (x2 - x1 - side) / 2, y1 + (y2 - y1 - side) / 2
    return (left, top, left + side, top + side)


def _fit(width: float, height: float, size: int) -> tuple[int, int]:
    """Dimensions of a ``width`` x ``height`` area fitted within ``size`` x ``size``, never enlarged."""
    ratio = min(1.0, size / width, size / height)
    return max(1, round(width * ratio)), max(1, round(height * ratio))
