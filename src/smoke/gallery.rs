//! The sample gallery: a PNG per sample, a grid per class and the overall grid.

use std::path::Path;

use super::images;
use super::report::{Grid, SampleImage};

/// Writes a PNG per sample, a grid per class and the overall grid. Images are class-major:
/// `rows[r]` owns images `r * per_class .. (r + 1) * per_class`.
pub(crate) fn write_gallery(
    out_dir: &Path,
    finals: &[f32],
    shape: [usize; 3],
    rows: &[(usize, &str)],
    per_class: usize,
) -> anyhow::Result<(Vec<SampleImage>, Vec<Grid>)> {
    crate::output::prepare_dir(out_dir, "the samples folder")?;
    let len: usize = shape.iter().product();
    let pixels: Vec<images::Pixels> = finals
        .chunks(len)
        .map(|image| images::to_pixels(image, shape))
        .collect();
    let mut samples = Vec::new();
    let mut grids = Vec::new();
    let mut all_rows = Vec::new();
    let write = |name: &str, pixels: &images::Pixels, title: &str| -> anyhow::Result<String> {
        let path = out_dir.join(name);
        images::write_png(&path, &path.display().to_string(), pixels, title)?;
        Ok(name.to_owned())
    };
    for (r, &(class, class_name)) in rows.iter().enumerate() {
        let stem = format!("{class:02}-{}", images::file_stem(class_name));
        let tiles: Vec<&images::Pixels> =
            pixels[r * per_class..(r + 1) * per_class].iter().collect();
        for (k, tile) in tiles.iter().enumerate() {
            let png = write(
                &format!("{stem}-{k}.png"),
                tile,
                &format!("{class_name} #{k}"),
            )?;
            samples.push(SampleImage {
                class,
                class_name: class_name.to_owned(),
                index: k,
                png,
                classifier_label: None,
            });
        }
        let row = vec![(class_name.to_owned(), tiles)];
        let png = write(&format!("grid-{stem}.png"), &images::grid(&row), class_name)?;
        grids.push(Grid {
            class: Some(class),
            class_name: Some(class_name.to_owned()),
            png,
        });
        all_rows.extend(row);
    }
    let png = write("grid.png", &images::grid(&all_rows), "samples")?;
    grids.push(Grid {
        class: None,
        class_name: None,
        png,
    });
    Ok((samples, grids))
}
