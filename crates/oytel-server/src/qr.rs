//! QR code images of activation codes, as PNG and SVG.

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module in PNG images.
const SCALE: usize = 8;
/// Quiet zone around the code, in modules (ISO/IEC 18004 asks for 4).
const QUIET: usize = 4;

fn code(text: &str) -> Result<QrCode, qrcode::types::QrError> {
    // Level M: what phone cameras and eSIM installers read comfortably.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
}

/// A PNG (8-bit greyscale) of the QR code of `text`.
pub fn png(text: &str) -> Result<Vec<u8>, String> {
    let code = code(text).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).map_err(|e| e.to_string())?;
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// An SVG of the QR code of `text`.
pub fn svg(text: &str) -> Result<String, String> {
    let code = code(text).map_err(|e| e.to_string())?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .build())
}
