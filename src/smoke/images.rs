//! Sample images: one PNG per sample, a labelled grid per class and an overall grid.
//!
//! A sample `x` becomes pixels as `round((clip(x, -1, 1) + 1) / 2 * 255)` (NaN becomes 0), the
//! mapping `reference/tinydit.md` gives. 1, 3 and 4 channels become grey, RGB and RGBA PNGs; any
//! other channel count is shown as grey from its first channel. Grids put each class's name to
//! the left of its row, drawn with the small built-in 3x5 pixel font below (upper case, digits
//! and `_-.:/()?`; other characters show as `?`), and the file names carry the class names too,
//! so nothing depends on reading the pixels. Each PNG also has a `Title` text chunk.

use std::io::{BufWriter, Write as _};
use std::path::Path;

use anyhow::Context as _;

use crate::output::AtomicFile;

/// An 8-bit image, rows of interleaved channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1, 3 or 4.
    pub channels: usize,
    /// `height * width * channels` bytes.
    pub data: Vec<u8>,
}

impl Pixels {
    fn filled(width: usize, height: usize, channels: usize, grey: u8) -> Self {
        let mut data = vec![grey; width * height * channels];
        if channels == 4 {
            for alpha in data.iter_mut().skip(3).step_by(4) {
                *alpha = 255;
            }
        }
        Self {
            width,
            height,
            channels,
            data,
        }
    }

    fn blit(&mut self, other: &Pixels, x: usize, y: usize) {
        let row_bytes = other.width * self.channels;
        for row in 0..other.height {
            let dst = ((y + row) * self.width + x) * self.channels;
            let src = row * row_bytes;
            self.data[dst..dst + row_bytes].copy_from_slice(&other.data[src..src + row_bytes]);
        }
    }

    fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, grey: u8) {
        let colour = self.channels.min(3);
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                let at = (row * self.width + col) * self.channels;
                self.data[at..at + colour].fill(grey);
            }
        }
    }
}

/// Maps one model-scale value to a pixel.
pub fn to_byte(x: f32) -> u8 {
    if x.is_nan() {
        return 0;
    }
    (f32::midpoint(x.clamp(-1.0, 1.0), 1.0) * 255.0).round() as u8
}

/// Pixels of one `[C, H, W]` sample.
pub fn to_pixels(image: &[f32], shape: [usize; 3]) -> Pixels {
    let [c, h, w] = shape;
    let channels = if matches!(c, 1 | 3 | 4) { c } else { 1 };
    let plane = h * w;
    let mut data = Vec::with_capacity(plane * channels);
    for p in 0..plane {
        for ch in 0..channels {
            data.push(to_byte(image[ch * plane + p]));
        }
    }
    Pixels {
        width: w,
        height: h,
        channels,
        data,
    }
}

/// Writes a PNG with a `Title` text chunk (`tEXt`, or `iTXt` for text beyond Latin-1).
/// `display` names the file in messages.
///
/// The bytes go through [`AtomicFile`]: a temporary sibling renamed over `path` when complete,
/// so a symlink already at `path` is replaced, never followed, and a failure leaves nothing.
pub fn write_png(path: &Path, display: &str, pixels: &Pixels, title: &str) -> anyhow::Result<()> {
    let mut file = AtomicFile::create(path)?;
    encode_png(&mut file, display, pixels, title)?;
    file.commit()
}

fn encode_png(
    file: &mut AtomicFile,
    display: &str,
    pixels: &Pixels,
    title: &str,
) -> anyhow::Result<()> {
    let mut buffered = BufWriter::new(file);
    let mut encoder = png::Encoder::new(
        &mut buffered,
        u32::try_from(pixels.width).context("image too wide")?,
        u32::try_from(pixels.height).context("image too tall")?,
    );
    encoder.set_color(match pixels.channels {
        1 => png::ColorType::Grayscale,
        4 => png::ColorType::Rgba,
        _ => png::ColorType::Rgb,
    });
    encoder.set_depth(png::BitDepth::Eight);
    // `tEXt` holds Latin-1 only: a title beyond it (a class named `猫` or `🐈 tabby`) goes into
    // the UTF-8 `iTXt` chunk instead.
    if title.chars().all(|c| u32::from(c) <= 0xff) {
        encoder.add_text_chunk("Title".to_owned(), title.to_owned())
    } else {
        encoder.add_itxt_chunk("Title".to_owned(), title.to_owned())
    }
    .with_context(|| format!("failed to write `{display}`"))?;
    let mut writer = encoder
        .write_header()
        .with_context(|| format!("failed to write `{display}`"))?;
    writer
        .write_image_data(&pixels.data)
        .with_context(|| format!("failed to write `{display}`"))?;
    writer
        .finish()
        .with_context(|| format!("failed to write `{display}`"))?;
    buffered
        .flush()
        .with_context(|| format!("failed to write `{display}`"))
}

/// A file-name-safe form of a class name: ASCII letters, digits, `-` and `_`.
pub fn file_stem(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "class".to_owned()
    } else {
        safe
    }
}

/// Grid cells are at least this many pixels on their longer side: tiles of smaller models
/// (TinyDiT fixtures are 32 px) are enlarged by a whole factor, nearest-neighbour, so a model page
/// shows pixels a person can see instead of smearing or shrinking them.
pub const MIN_GRID_CELL: usize = 128;

impl Pixels {
    /// Each pixel repeated `factor` times in both directions (nearest-neighbour).
    #[must_use]
    pub fn upscaled(&self, factor: usize) -> Pixels {
        if factor <= 1 {
            return self.clone();
        }
        let width = self.width * factor;
        let mut data = Vec::with_capacity(self.data.len() * factor * factor);
        for row in self.data.chunks(self.width * self.channels) {
            let mut wide = Vec::with_capacity(width * self.channels);
            for pixel in row.chunks(self.channels) {
                for _ in 0..factor {
                    wide.extend_from_slice(pixel);
                }
            }
            for _ in 0..factor {
                data.extend_from_slice(&wide);
            }
        }
        Pixels {
            width,
            height: self.height * factor,
            channels: self.channels,
            data,
        }
    }
}

/// The whole factor that brings a `width` x `height` tile to [`MIN_GRID_CELL`] on its longer side.
pub fn grid_factor(width: usize, height: usize) -> usize {
    MIN_GRID_CELL.div_ceil(width.max(height).max(1)).max(1)
}

const GAP: usize = 2;
const BACKGROUND: u8 = 24;
const INK: u8 = 235;

/// A grid: one row per `(label, images)`, the label drawn left of the row; tiles smaller than
/// [`MIN_GRID_CELL`] are enlarged by [`grid_factor`].
pub fn grid(rows: &[(String, Vec<&Pixels>)]) -> Pixels {
    let native_w = rows
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| t.width))
        .max()
        .unwrap_or(1);
    let native_h = rows
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| t.height))
        .max()
        .unwrap_or(1);
    let factor = grid_factor(native_w, native_h);
    let enlarged: Vec<(String, Vec<Pixels>)> = rows
        .iter()
        .map(|(label, tiles)| {
            (
                label.clone(),
                tiles.iter().map(|t| t.upscaled(factor)).collect(),
            )
        })
        .collect();
    let rows: Vec<(String, Vec<&Pixels>)> = enlarged
        .iter()
        .map(|(label, tiles)| (label.clone(), tiles.iter().collect()))
        .collect();
    let rows = rows.as_slice();
    let tile_w = rows
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| t.width))
        .max()
        .unwrap_or(1);
    let tile_h = rows
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| t.height))
        .max()
        .unwrap_or(1);
    let channels = rows
        .iter()
        .flat_map(|(_, tiles)| tiles.iter().map(|t| t.channels))
        .next()
        .unwrap_or(3);
    let scale = (tile_h / 32).max(1);
    let label_w = rows
        .iter()
        .map(|(label, _)| text_width(label, scale))
        .max()
        .unwrap_or(0)
        + 2 * GAP;
    let columns = rows.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
    let row_h = tile_h.max(GLYPH_H * scale);
    let width = label_w + columns * (tile_w + GAP) + GAP;
    let height = rows.len() * (row_h + GAP) + GAP;
    let mut out = Pixels::filled(width, height, channels, BACKGROUND);
    for (r, (label, tiles)) in rows.iter().enumerate() {
        let y = GAP + r * (row_h + GAP);
        draw_text(
            &mut out,
            label,
            GAP,
            y + (row_h - GLYPH_H * scale) / 2,
            scale,
        );
        for (c, tile) in tiles.iter().enumerate() {
            if tile.channels == channels {
                out.blit(tile, label_w + c * (tile_w + GAP), y);
            }
        }
    }
    out
}

const GLYPH_W: usize = 3;
const GLYPH_H: usize = 5;

fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * (GLYPH_W + 1) - 1) * scale
    }
}

fn draw_text(image: &mut Pixels, text: &str, x: usize, y: usize, scale: usize) {
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c);
        let left = x + i * (GLYPH_W + 1) * scale;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (0b100 >> col) != 0 {
                    image.fill_rect(left + col * scale, y + row * scale, scale, scale, INK);
                }
            }
        }
    }
}

/// A 3x5 glyph: five rows, the three low bits of each, leftmost pixel in bit 2.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b110, 0b001, 0b010, 0b100, 0b111],
        '3' => [0b110, 0b001, 0b010, 0b001, 0b110],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b110, 0b001, 0b110],
        '6' => [0b011, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b110],
        '_' => [0b000, 0b000, 0b000, 0b000, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '/' => [0b001, 0b001, 0b010, 0b100, 0b100],
        '(' => [0b001, 0b010, 0b010, 0b010, 0b001],
        ')' => [0b100, 0b010, 0b010, 0b010, 0b100],
        ' ' => [0; 5],
        _ => [0b110, 0b001, 0b010, 0b000, 0b010],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_from_minus_one_one_to_bytes() {
        assert_eq!(to_byte(-1.0), 0);
        assert_eq!(to_byte(-7.0), 0);
        assert_eq!(to_byte(0.0), 128);
        assert_eq!(to_byte(1.0), 255);
        assert_eq!(to_byte(3.0), 255);
        assert_eq!(to_byte(f32::NAN), 0);
    }

    #[test]
    fn planes_are_interleaved() {
        // [C=3, H=1, W=2]: red plane, green plane, blue plane.
        let p = to_pixels(&[1.0, -1.0, -1.0, 1.0, 0.0, 0.0], [3, 1, 2]);
        assert_eq!(p.data, [255, 0, 128, 0, 255, 128]);
        assert_eq!(to_pixels(&[0.0; 4], [2, 1, 2]).channels, 1);
    }

    #[test]
    fn grid_has_rows_labels_and_decodes() {
        let tile = to_pixels(&[1.0; 3 * 32 * 32], [3, 32, 32]);
        let rows = vec![
            ("Bengal".to_owned(), vec![&tile, &tile]),
            ("Maine_Coon".to_owned(), vec![&tile, &tile]),
        ];
        let g = grid(&rows);
        // 32 px tiles become 128 px cells; labels scale with them.
        let label_w = text_width("Maine_Coon", 4) + 2 * GAP;
        assert_eq!(g.width, label_w + 2 * (128 + GAP) + GAP);
        assert_eq!(g.height, 2 * (128 + GAP) + GAP);
        assert!(g.data.contains(&INK), "label drawn");

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("grid.png");
        write_png(&path, "grid.png", &g, "grid").expect("write");
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).expect("open"),
        ));
        let reader = decoder.read_info().expect("decode");
        assert_eq!(reader.info().width as usize, g.width);
        assert_eq!(reader.info().height as usize, g.height);
    }

    #[test]
    fn titles_beyond_latin_1_are_written_as_utf8_text() {
        let tile = to_pixels(&[0.0; 3 * 4 * 4], [3, 4, 4]);
        let dir = tempfile::tempdir().expect("tempdir");
        for title in [
            "Abyssinian #0",
            "Sacré-Cœur",
            "猫 #0",
            "🐈 tabby",
            "caf\u{e9}",
        ] {
            let path = dir.path().join("t.png");
            write_png(&path, "t.png", &tile, title).expect("write");
            let reader = png::Decoder::new(std::io::BufReader::new(
                std::fs::File::open(&path).expect("open"),
            ))
            .read_info()
            .expect("decode");
            let info = reader.info();
            let latin1: Vec<&str> = info
                .uncompressed_latin1_text
                .iter()
                .map(|t| t.text.as_str())
                .collect();
            let utf8: Vec<String> = info
                .utf8_text
                .iter()
                .map(|t| t.get_text().expect("text"))
                .collect();
            if title.chars().all(|c| u32::from(c) <= 0xff) {
                assert_eq!((latin1, utf8), (vec![title], vec![]));
            } else {
                assert_eq!((latin1, utf8), (vec![], vec![title.to_owned()]));
            }
        }
    }

    #[test]
    fn small_tiles_are_enlarged_nearest_neighbour_and_large_ones_kept() {
        assert_eq!(grid_factor(32, 32), 4);
        assert_eq!(grid_factor(100, 60), 2);
        assert_eq!(grid_factor(128, 128), 1);
        assert_eq!(grid_factor(512, 512), 1);
        // [C=1, H=1, W=2]: black, white.
        let tile = to_pixels(&[-1.0, 1.0], [1, 1, 2]);
        let big = tile.upscaled(2);
        assert_eq!((big.width, big.height), (4, 2));
        assert_eq!(big.data, [0, 0, 255, 255, 0, 0, 255, 255]);
        let tile = to_pixels(&vec![0.0; 3 * 128 * 128], [3, 128, 128]);
        let g = grid(&[("a".to_owned(), vec![&tile])]);
        assert_eq!(g.height, 128 + 2 * GAP, "128 px tiles are not enlarged");
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(
            file_stem("British Shorthair/../x"),
            "British_Shorthair____x"
        );
        assert_eq!(file_stem(""), "class");
    }
}
