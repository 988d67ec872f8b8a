//! Declared inputs and outputs against the contract in `[generator]` / `[classifier]`.
//!
//! Every mismatch is collected, then reported in one error that names what was expected and what
//! the model has ("expected input `noise`, the model has `x`, `t`, `y`"), so a user fixes an
//! export or a config in one round trip. Dynamic dimensions (named or unnamed) match anything;
//! fixed ones must match the configured size, and a fixed batch is returned so the sampler can
//! fill it.

use super::summary::{Dim, ElementType, ModelSummary, TensorInfo};
use crate::config::{ClassifierConfig, GeneratorConfig};
use crate::error::Problem;

/// What the sampler needs to know about the generator beyond the configured names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorIo {
    /// The batch size the graph fixes, or `None` when the batch axis is dynamic.
    pub fixed_batch: Option<usize>,
}

/// What the classifier check needs to know about the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifierIo {
    /// The batch size the graph fixes, or `None` when the batch axis is dynamic.
    pub fixed_batch: Option<usize>,
}

/// Expected rank and fixed sizes of one tensor; `None` sizes are not checked.
struct Expect<'a> {
    kind: &'a str,
    name: &'a str,
    dtype: ElementType,
    /// (dimension label, configured size) per axis; axis 0 is the batch.
    dims: Vec<(&'a str, Option<i64>)>,
}

/// Checks the generator's declared I/O against `[generator]`.
pub fn check_generator(
    summary: &ModelSummary,
    config: &GeneratorConfig,
) -> anyhow::Result<GeneratorIo> {
    let size = Some(i64::from(config.image_size));
    let channels = Some(i64::from(config.channels));
    let image = |kind, name| Expect {
        kind,
        name,
        dtype: ElementType::Float32,
        dims: vec![
            ("batch", None),
            ("`generator.channels`", channels),
            ("`generator.image-size`", size),
            ("`generator.image-size`", size),
        ],
    };
    let expects = [
        image("input", config.noise_input.as_str()),
        Expect {
            kind: "input",
            name: &config.timestep_input,
            dtype: ElementType::Float32,
            dims: vec![("batch", None)],
        },
        Expect {
            kind: "input",
            name: &config.label_input,
            dtype: ElementType::Int64,
            dims: vec![("batch", None)],
        },
        image("output", config.output.as_str()),
    ];
    let fixed_batch = check(summary, "[generator]", &expects, true)?;
    Ok(GeneratorIo { fixed_batch })
}

/// Checks the classifier's declared I/O against `[classifier]`; `channels` comes from
/// `[generator]`, whose samples it classifies.
pub fn check_classifier(
    summary: &ModelSummary,
    config: &ClassifierConfig,
    channels: u32,
) -> anyhow::Result<ClassifierIo> {
    let size = Some(i64::from(config.image_size));
    let expects = [
        Expect {
            kind: "input",
            name: &config.input,
            dtype: ElementType::Float32,
            dims: vec![
                ("batch", None),
                ("`generator.channels`", Some(i64::from(channels))),
                ("`classifier.image-size`", size),
                ("`classifier.image-size`", size),
            ],
        },
        Expect {
            kind: "output",
            name: &config.output,
            dtype: ElementType::Float32,
            dims: vec![
                ("batch", None),
                (
                    "the number of `classifier.labels`",
                    Some(config.labels.len() as i64),
                ),
            ],
        },
    ];
    // Classifiers often have extra outputs (features, probabilities); only named ones matter.
    let fixed_batch = check(summary, "[classifier]", &expects, false)?;
    Ok(ClassifierIo { fixed_batch })
}

fn names(tensors: &[TensorInfo]) -> String {
    if tensors.is_empty() {
        return "none".to_owned();
    }
    tensors
        .iter()
        .map(|t| format!("`{}`", t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(
    summary: &ModelSummary,
    table: &str,
    expects: &[Expect<'_>],
    exact_outputs: bool,
) -> anyhow::Result<Option<usize>> {
    let mut problems = Vec::new();
    let mut batches: Vec<(String, i64)> = Vec::new();
    for kind in ["input", "output"] {
        let declared = if kind == "input" {
            &summary.inputs
        } else {
            &summary.outputs
        };
        let wanted: Vec<&Expect<'_>> = expects.iter().filter(|e| e.kind == kind).collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|e| !declared.iter().any(|d| d.name == e.name))
            .map(|e| format!("`{}`", e.name))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "expected {kind}{} {}, the model has {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                names(declared)
            ));
        } else if kind == "input" || exact_outputs {
            // Only when every expected name is there: otherwise the list above already shows them.
            for extra in declared
                .iter()
                .filter(|d| !wanted.iter().any(|e| e.name == d.name))
            {
                problems.push(format!(
                    "the model has {kind} `{}`, which `{table}` does not name",
                    extra.name
                ));
            }
        }
        for expect in &wanted {
            let Some(found) = declared.iter().find(|d| d.name == expect.name) else {
                continue;
            };
            check_tensor(found, expect, table, &mut problems, &mut batches);
        }
    }
    let fixed = batches.first().map(|(_, n)| *n);
    if batches.iter().any(|(_, n)| Some(*n) != fixed) {
        let list: Vec<String> = batches
            .iter()
            .map(|(name, n)| format!("`{name}` {n}"))
            .collect();
        problems.push(format!("fixed batch sizes disagree: {}", list.join(", ")));
    }
    if !problems.is_empty() {
        let hint = if table == "[generator]" {
            "set the model's names in `[generator.inputs]` and `generator.output`, \
             or re-export with `input_names`/`output_names`"
        } else {
            "set the model's names in `classifier.input` and `classifier.output`, \
             or re-export with `input_names`/`output_names`"
        };
        return Err(Problem::new(format!(
            "`{}` does not match `{table}`: {}",
            summary.file,
            problems.join("; ")
        ))
        .hint(hint)
        .into());
    }
    Ok(fixed.and_then(|n| usize::try_from(n).ok()))
}

fn check_tensor(
    found: &TensorInfo,
    expect: &Expect<'_>,
    table: &str,
    problems: &mut Vec<String>,
    batches: &mut Vec<(String, i64)>,
) {
    if found.dtype != expect.dtype {
        problems.push(format!(
            "{} `{}` is {}, `{table}` needs {}",
            expect.kind, expect.name, found.dtype, expect.dtype
        ));
    }
    let Some(dims) = &found.shape else {
        return;
    };
    if dims.len() != expect.dims.len() {
        problems.push(format!(
            "{} {found} has rank {}, `{table}` needs rank {}",
            expect.kind,
            dims.len(),
            expect.dims.len()
        ));
        return;
    }
    for (axis, (dim, (label, want))) in dims.iter().zip(&expect.dims).enumerate() {
        match (dim, want) {
            (Dim::Fixed(n), _) if axis == 0 => {
                if *n < 1 {
                    problems.push(format!("{} {found} fixes the batch to {n}", expect.kind));
                }
                batches.push((expect.name.to_owned(), *n));
            }
            (Dim::Fixed(n), Some(want)) if n != want => problems.push(format!(
                "{} {found} has {n} at axis {axis}, {label} is {want}",
                expect.kind
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{generator_model, write};
    use super::*;
    use crate::config::CfgMode;

    fn generator() -> GeneratorConfig {
        GeneratorConfig {
            image_size: 32,
            channels: 3,
            classes: vec!["a".into(), "b".into()],
            uncond_class: Some(1),
            noise_input: "noise".into(),
            timestep_input: "timestep".into(),
            label_input: "breed".into(),
            output: "velocity".into(),
            cfg: CfgMode::Explicit,
            cfg_scale: 1.5,
            steps: 8,
        }
    }

    fn summary(model: &super::super::proto::ModelProto) -> ModelSummary {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "gen.onnx", model);
        super::super::inspect(&path, "gen.onnx").expect("inspect")
    }

    #[test]
    fn matching_io_passes_with_a_dynamic_batch() {
        let io = check_generator(&summary(&generator_model()), &generator()).expect("match");
        assert_eq!(io.fixed_batch, None);
    }

    #[test]
    fn wrong_names_name_expected_and_actual() {
        let mut config = generator();
        config.noise_input = "x".into();
        config.label_input = "label".into();
        let err = check_generator(&summary(&generator_model()), &config)
            .expect_err("mismatch")
            .to_string();
        assert!(
            err.contains(
                "expected inputs `x`, `label`, the model has `noise`, `timestep`, `breed`"
            ),
            "{err}"
        );
        assert!(!err.contains("does not name"), "{err}");
        config.noise_input = "noise".into();
        config.label_input = "breed".into();
        config.output = "v".into();
        let err = check_generator(&summary(&generator_model()), &config)
            .expect_err("mismatch")
            .to_string();
        assert!(
            err.contains("expected output `v`, the model has `velocity`"),
            "{err}"
        );
    }

    #[test]
    fn dtype_rank_and_size_mismatches_are_reported_together() {
        let mut config = generator();
        config.image_size = 64;
        config.channels = 1;
        let mut model = generator_model();
        let graph = model.graph.as_mut().expect("graph");
        graph.input[2] = super::super::tests::value("breed", 6, &[Dim::Named("batch".into())]);
        graph.input[1] = super::super::tests::value("timestep", 1, &[]);
        let err = check_generator(&summary(&model), &config)
            .expect_err("mismatch")
            .to_string();
        assert!(
            err.contains("input `breed` is int32, `[generator]` needs int64"),
            "{err}"
        );
        assert!(
            err.contains("has rank 0, `[generator]` needs rank 1"),
            "{err}"
        );
        assert!(
            err.contains("has 3 at axis 1, `generator.channels` is 1"),
            "{err}"
        );
        assert!(
            err.contains("has 32 at axis 2, `generator.image-size` is 64"),
            "{err}"
        );
    }

    #[test]
    fn a_fixed_batch_is_returned_and_must_agree() {
        let mut model = generator_model();
        let graph = model.graph.as_mut().expect("graph");
        for value in graph.input.iter_mut().chain(graph.output.iter_mut()) {
            let dims = &mut value
                .r#type
                .as_mut()
                .and_then(|t| t.tensor_type.as_mut())
                .and_then(|t| t.shape.as_mut())
                .expect("shape")
                .dim;
            dims[0].dim_value = Some(2);
            dims[0].dim_param = None;
        }
        let io = check_generator(&summary(&model), &generator()).expect("match");
        assert_eq!(io.fixed_batch, Some(2));
    }
}
