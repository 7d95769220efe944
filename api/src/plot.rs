//! Training-data plots: the seed's matplotlib figure redrawn with plotters (title, axes, grid,
//! line with markers). Text uses the bundled DejaVu Sans, never the system's fonts, so a plot
//! looks the same in a slim container.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use anomaly_workers::domain::{Point, SeriesId, Version};

pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 500;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const LINE: RGBColor = RGBColor(31, 119, 180);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
}

pub fn title(series: &SeriesId, version: Version) -> String {
    format!("Training Data - {series} ({version})")
}

fn register_bundled_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::error!("the bundled plot font could not be loaded");
        }
    });
}

/// A range that contains every value with a margin, and is never empty.
fn padded(min: f64, max: f64) -> (f64, f64) {
    let span = max - min;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        min.abs().max(1.0) * 0.05
    };
    (min - pad, max + pad)
}

/// Renders `points` as a PNG of `WIDTH`×`HEIGHT`.
pub fn render(title: &str, points: &[Point]) -> Result<Vec<u8>, PlotError> {
    register_bundled_font();
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut rgb = vec![255u8; w * h * 3];
    draw(title, points, &mut rgb).map_err(|e| PlotError::Draw(e.to_string()))?;

    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(png_bytes)
}

fn draw(title: &str, points: &[Point], rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.timestamp as f64, p.value))
        .collect();
    let fold = |f: fn(&(f64, f64)) -> f64| {
        xy.iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x_min, x_max) = fold(|p| p.0);
    let (y_min, y_max) = fold(|p| p.1);
    let (x_lo, x_hi) = padded(x_min, x_max);
    let (y_lo, y_hi) = padded(y_min, y_max);

    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("Timestamp")
        .y_desc("Value")
        .x_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;
    chart.draw_series(LineSeries::new(xy.iter().copied(), LINE.stroke_width(2)))?;
    chart.draw_series(xy.iter().map(|&p| Circle::new(p, 4, LINE.filled())))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (u32, u32) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().expect("a PNG");
        (reader.info().width, reader.info().height)
    }

    #[test]
    fn renders_a_png_of_the_documented_size() {
        let points: Vec<Point> = [10.0, 10.5, 11.0]
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                timestamp: 1_693_459_200 + 60 * i as i64,
                value,
            })
            .collect();
        let series = SeriesId::parse("sensor_01").unwrap();
        let png_bytes = render(&title(&series, Version::FIRST), &points).unwrap();
        assert_eq!(decode(&png_bytes), (WIDTH, HEIGHT));
    }

    #[test]
    fn a_single_timestamp_or_value_still_renders() {
        let points = vec![
            Point {
                timestamp: 5,
                value: 1.0,
            },
            Point {
                timestamp: 5,
                value: 1.0,
            },
        ];
        assert!(render("t", &points).is_ok());
    }

    #[test]
    fn the_title_follows_the_seed() {
        let series = SeriesId::parse("sensor_01").unwrap();
        assert_eq!(
            title(&series, Version::FIRST),
            "Training Data - sensor_01 (v1)"
        );
    }
}
