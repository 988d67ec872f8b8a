//! Cross-field rules of `release.toml`, and the located problems every check reports into.
//!
//! Each rule looks at the deserialized `RawConfig` and pushes a [`Located`] problem with the
//! position of the offending key; nothing stops at the first problem. Structural problems
//! (unknown keys, wrong types) come from `schema_check.rs` before this runs.

use std::collections::{BTreeSet, HashSet};

use super::paths::{PathRoots, check_bundle_path};
use super::raw::{CfgMode, OnnxRole, RawConfig, VersionSource};
use super::source::Source;
pub use crate::error::{ConfigError, Located};
pub use crate::vocab::did_you_mean;

/// Where a problem is, from the parsed source. (`Located` itself is a ground-floor type in
/// [`crate::error`], so the printer can show it without knowing the configuration.)
impl Located {
    /// A problem located at the value of `path`.
    pub fn at_value(source: &Source, path: &str, message: impl Into<String>) -> Self {
        let (line, column) = source.value_position(path);
        Self {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem located at the key of `path`.
    pub fn at_key(source: &Source, path: &str, message: impl Into<String>) -> Self {
        let (line, column) = source.key_position(path);
        Self {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }
}

/// Collects problems; a checker pushes as many as it finds.
#[derive(Debug, Default)]
pub struct Sink(Vec<Located>);

impl Sink {
    /// Records a problem.
    pub fn push(&mut self, problem: Located) {
        self.0.push(problem);
    }

    /// Records several problems.
    pub fn extend(&mut self, other: Sink) {
        self.0.extend(other.0);
    }

    /// No problem recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems in file order.
    pub fn into_sorted(mut self) -> Vec<Located> {
        self.0
            .sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
        self.0.dedup();
        self.0
    }
}

/// Runs every cross-field rule.
pub(super) fn check(
    raw: &RawConfig,
    roots: &PathRoots,
    source: &Source,
    allow_missing_inputs: bool,
    sink: &mut Sink,
) {
    let rules = Rules {
        raw,
        roots,
        source,
        allow_missing_inputs,
    };
    rules.model(sink);
    rules.version(sink);
    rules.artifacts(sink);
    rules.generator(sink);
    rules.classifier(sink);
    rules.smoke(sink);
    rules.metrics_and_gates(sink);
    rules.card_and_bundle(sink);
    rules.checks(sink);
}

struct Rules<'a> {
    raw: &'a RawConfig,
    roots: &'a PathRoots,
    source: &'a Source,
    allow_missing_inputs: bool,
}

impl Rules<'_> {
    fn at(&self, path: &str, message: impl Into<String>) -> Located {
        Located::at_value(self.source, path, message)
    }

    /// A path read from the repository must stay inside it and exist.
    fn input_path(&self, key: &str, value: &str, sink: &mut Sink) {
        match self.roots.resolve(value) {
            Err(err) => sink.push(
                self.at(key, format!("`{key}` = `{value}` {err}"))
                    .hint("use a path relative to release.toml inside the repository"),
            ),
            Ok(path) if !path.exists() && !self.allow_missing_inputs => sink.push(
                self.at(key, format!("`{key}` = `{value}` does not exist"))
                    .hint(format!(
                        "looked for `{}` in the repository; paths are relative to release.toml",
                        self.roots.display(&path)
                    )),
            ),
            Ok(_) => {}
        }
    }

    fn bundle_path(&self, key: &str, value: &str, seen: &mut HashSet<String>, sink: &mut Sink) {
        if check_bundle_path(value).is_err() {
            sink.push(
                self.at(
                    key,
                    format!("`{key}` = `{value}` is not a path inside the bundle"),
                )
                .hint("bundle paths are relative to the bundle folder, like `onnx/model.onnx`"),
            );
        } else if GENERATED_FILES.contains(&value) {
            sink.push(
                self.at(
                    key,
                    format!("`{key}` = `{value}` is a file tinydit-release writes itself"),
                )
                .hint("choose another name; the bundle's README.md is the generated model card"),
            );
        } else if !seen.insert(value.to_owned()) {
            sink.push(self.at(
                key,
                format!("`{key}` = `{value}` is used by another entry of the bundle"),
            ));
        }
    }

    fn model(&self, sink: &mut Sink) {
        let model = &self.raw.model;
        if model.name.trim().is_empty() {
            sink.push(self.at("model.name", "`model.name` is empty"));
        }
        if let Err(why) = check_repo_id(&model.hub_repo) {
            sink.push(
                self.at(
                    "model.hub-repo",
                    format!("`model.hub-repo` = `{}` {why}", model.hub_repo),
                )
                .hint("write the Hub repository as `owner/name`, e.g. `d-oit/tinydit-cats`"),
            );
        }
        if let Some(license) = &model.license
            && !crate::vocab::is_license(license)
        {
            let mut problem = self.at(
                "model.license",
                format!("`model.license` = `{license}` is not a license id the Hub accepts"),
            );
            problem.hint = Some(match did_you_mean(license, crate::vocab::licenses()) {
                Some(guess) => format!("did you mean `{guess}`?"),
                None => "use an id like `apache-2.0` or `mit`, or `other`".to_owned(),
            });
            sink.push(problem);
        }
        if let Some(tag) = &model.pipeline_tag
            && !crate::vocab::is_pipeline_tag(tag)
        {
            sink.push(
                self.at(
                    "model.pipeline-tag",
                    format!("`model.pipeline-tag` = `{tag}` is not a Hub pipeline tag"),
                )
                .hint(crate::vocab::pipeline_tag_hint(tag)),
            );
        }
        if let Some(repo) = &model.github_repo
            && check_repo_id(repo).is_err()
        {
            sink.push(
                self.at(
                    "model.github-repo",
                    format!("`model.github-repo` = `{repo}` is not `owner/name`"),
                )
                .hint("leave it out to use `$GITHUB_REPOSITORY`"),
            );
        }
    }

    fn version(&self, sink: &mut Sink) {
        let Some(version) = &self.raw.version else {
            return;
        };
        if let Some(prefix) = &version.tag_prefix
            && let Err(why) = check_tag_prefix(prefix)
        {
            sink.push(
                self.at(
                    "version.tag-prefix",
                    format!(
                        "`version.tag-prefix` = `{}` cannot start a git tag name: {why}",
                        prefix.escape_debug()
                    ),
                )
                .hint("use letters, digits, `-`, `_`, `.` and `/` between parts, like the default `v`"),
            );
        }
        match (version.from.unwrap_or(VersionSource::Tag), &version.value) {
            (VersionSource::Config, None) => sink.push(
                self.at(
                    "version",
                    "`version.from = \"config\"` needs `version.value`",
                )
                .hint("add `value = \"1.0.0\"` or use `from = \"tag\"`"),
            ),
            (VersionSource::Tag, Some(_)) => sink.push(
                self.at(
                    "version.value",
                    "`version.value` is ignored because `version.from` is `tag`",
                )
                .hint("remove `value` or set `from = \"config\"`"),
            ),
            (VersionSource::Config, Some(value)) => {
                if let Err(err) = semver::Version::parse(value) {
                    sink.push(
                        self.at(
                            "version.value",
                            format!("`version.value` = `{value}` is not a semantic version: {err}"),
                        )
                        .hint("write it as MAJOR.MINOR.PATCH, e.g. `1.2.0`"),
                    );
                }
            }
            (VersionSource::Tag, None) => {}
        }
    }

    fn artifacts(&self, sink: &mut Sink) {
        let mut outputs = HashSet::new();
        for (i, checkpoint) in self.raw.checkpoint.iter().enumerate() {
            let key = format!("checkpoint[{i}]");
            self.input_path(&format!("{key}.path"), &checkpoint.path, sink);
            self.bundle_path(
                &format!("{key}.output"),
                &checkpoint.output,
                &mut outputs,
                sink,
            );
            if !checkpoint.output.ends_with(".safetensors") {
                sink.push(self.at(
                    &format!("{key}.output"),
                    format!(
                        "`{key}.output` = `{}` must end in `.safetensors`",
                        checkpoint.output
                    ),
                ));
            }
            if let Some(weights) = &checkpoint.weights
                && (weights.is_empty() || weights.split('.').any(str::is_empty))
            {
                sink.push(
                    self.at(
                        &format!("{key}.weights"),
                        format!("`{key}.weights` = `{weights}` is not a dotted path"),
                    )
                    .hint("use `auto`, `ema`, `model` or a path like `trainer.ema`"),
                );
            }
            if let Some(size) = &checkpoint.max_shard_size
                && parse_size(size).is_none()
            {
                sink.push(
                    self.at(
                        &format!("{key}.max-shard-size"),
                        format!("`{key}.max-shard-size` = `{size}` is not a size"),
                    )
                    .hint("write a size like `5GB`, `500MB` or `2GiB`"),
                );
            }
        }
        let mut generators = 0;
        for (i, onnx) in self.raw.onnx.iter().enumerate() {
            let key = format!("onnx[{i}]");
            self.input_path(&format!("{key}.path"), &onnx.path, sink);
            let output = onnx
                .output
                .clone()
                .unwrap_or_else(|| default_onnx_output(&onnx.path));
            self.bundle_path(&format!("{key}.output"), &output, &mut outputs, sink);
            let variant_problems = variant_problems(self.raw, i);
            for (field, message, hint) in &variant_problems {
                sink.push(
                    self.at(&format!("{key}.{field}"), message.clone())
                        .hint(hint.clone()),
                );
            }
            if let Some(quantize) = &onnx.quantize {
                let resolved = super::quantize::resolve(quantize, &onnx.path);
                self.bundle_path(
                    &format!("{key}.quantize.output"),
                    &resolved.output,
                    &mut outputs,
                    sink,
                );
            }
            match onnx.role {
                OnnxRole::Generator if onnx.variant.is_some() => {}
                OnnxRole::Generator => {
                    generators += 1;
                    if generators > 1 {
                        sink.push(self.at(
                            &format!("{key}.role"),
                            "only one `[[onnx]]` may have `role = \"generator\"`",
                        ));
                    }
                    if self.raw.generator.is_none() {
                        sink.push(
                            self.at(
                                &format!("{key}.role"),
                                "a generator needs a `[generator]` table",
                            )
                            .hint("describe its inputs, classes and sampling in `[generator]`"),
                        );
                    }
                }
                OnnxRole::Classifier if self.raw.classifier.is_none() => sink.push(self.at(
                    &format!("{key}.role"),
                    "a classifier needs a `[classifier]` table",
                )),
                _ => {}
            }
        }
        for (i, include) in self
            .raw
            .bundle
            .iter()
            .flat_map(|b| b.include.iter())
            .enumerate()
        {
            let key = format!("bundle.include[{i}]");
            self.input_path(&key, include, sink);
            let name = bundle_name_of_include(include);
            self.bundle_path(&key, &name, &mut outputs, sink);
        }
    }

    fn generator(&self, sink: &mut Sink) {
        let Some(generator) = &self.raw.generator else {
            return;
        };
        if generator.image_size == 0 {
            sink.push(self.at(
                "generator.image-size",
                "`generator.image-size` must be at least 1",
            ));
        }
        if generator.channels == Some(0) {
            sink.push(self.at(
                "generator.channels",
                "`generator.channels` must be at least 1",
            ));
        }
        if generator.classes.is_empty() {
            sink.push(self.at("generator.classes", "`generator.classes` is empty"));
        }
        let mut seen = HashSet::new();
        for (i, class) in generator.classes.iter().enumerate() {
            if !seen.insert(class) {
                sink.push(self.at(
                    &format!("generator.classes[{i}]"),
                    format!("class `{class}` is listed twice"),
                ));
            }
        }
        let cfg = generator.cfg.unwrap_or(CfgMode::Explicit);
        match generator.uncond_class {
            Some(class) if class as usize >= generator.classes.len() => sink.push(self.at(
                "generator.uncond-class",
                format!(
                    "`generator.uncond-class` = `{class}` is not a class index (0..{})",
                    generator.classes.len()
                ),
            )),
            None if cfg == CfgMode::Explicit => sink.push(
                self.at(
                    "generator",
                    "`cfg = \"explicit\"` needs `generator.uncond-class`",
                )
                .hint("name the class index of the unconditional branch, or set `cfg = \"none\"`"),
            ),
            _ => {}
        }
        if let Some(scale) = generator.cfg_scale
            && !(scale.is_finite() && (0.0..=100.0).contains(&scale))
        {
            sink.push(self.at(
                "generator.cfg-scale",
                format!("`generator.cfg-scale` must be within 0..=100, found `{scale}`"),
            ));
        }
        if let Some(steps) = generator.steps
            && !(1..=10_000).contains(&steps)
        {
            sink.push(self.at(
                "generator.steps",
                format!("`generator.steps` must be within 1..=10000, found `{steps}`"),
            ));
        }
    }

    fn classifier(&self, sink: &mut Sink) {
        let Some(classifier) = &self.raw.classifier else {
            return;
        };
        if classifier.image_size == 0 {
            sink.push(self.at(
                "classifier.image-size",
                "`classifier.image-size` must be at least 1",
            ));
        }
        let channels = self
            .raw
            .generator
            .as_ref()
            .and_then(|g| g.channels)
            .unwrap_or(3) as usize;
        for (key, values) in [("mean", &classifier.mean), ("std", &classifier.std)] {
            // With `channels = 0` (reported on its own) there is no count to compare with.
            if channels > 0 && values.len() != channels {
                sink.push(self.at(
                    &format!("classifier.{key}"),
                    format!(
                        "`classifier.{key}` has {} value(s); one per channel ({channels}) is needed",
                        values.len()
                    ),
                ));
            }
        }
        if let Some(i) = classifier
            .std
            .iter()
            .position(|s| !(s.is_finite() && *s > 0.0))
        {
            sink.push(self.at(
                &format!("classifier.std[{i}]"),
                "`classifier.std` values must be greater than 0",
            ));
        }
        if classifier.labels.is_empty() {
            sink.push(self.at("classifier.labels", "`classifier.labels` is empty"));
        }
        let labels: Vec<&str> = classifier.labels.iter().map(String::as_str).collect();
        if classifier.expect != "class" && !labels.contains(&classifier.expect.as_str()) {
            let mut problem = self.at(
                "classifier.expect",
                format!(
                    "`classifier.expect` = `{}` is neither a label nor `class`",
                    classifier.expect
                ),
            );
            problem.hint = did_you_mean(&classifier.expect, &labels)
                .map(|g| format!("did you mean `{g}`?"))
                .or_else(|| Some(format!("labels: {}", labels.join(", "))));
            sink.push(problem);
        }
        if classifier.expect == "class"
            && let Some(generator) = &self.raw.generator
            && generator.classes.len() != classifier.labels.len()
        {
            sink.push(self.at(
                "classifier.labels",
                format!(
                    "`expect = \"class\"` needs one label per generator class ({}), found {}",
                    generator.classes.len(),
                    classifier.labels.len()
                ),
            ));
        }
    }

    fn smoke(&self, sink: &mut Sink) {
        let Some(smoke) = &self.raw.smoke else {
            return;
        };
        if let Some(providers) = &smoke.providers {
            if providers.is_empty() {
                sink.push(self.at("smoke.providers", "`smoke.providers` is empty"));
            }
            let unique: HashSet<_> = providers.iter().collect();
            if unique.len() != providers.len() {
                sink.push(self.at(
                    "smoke.providers",
                    "`smoke.providers` lists a provider twice",
                ));
            }
        }
        for (key, value) in [
            ("samples-per-class", smoke.samples_per_class),
            ("batch-size", smoke.batch_size),
            ("threads", smoke.threads),
        ] {
            if value == Some(0) {
                sink.push(self.at(
                    &format!("smoke.{key}"),
                    format!("`smoke.{key}` must be at least 1"),
                ));
            }
        }
        if smoke.samples_per_class.is_some_and(|n| n > 1000) {
            sink.push(self.at(
                "smoke.samples-per-class",
                "`smoke.samples-per-class` must be at most 1000",
            ));
        }
        if smoke.batch_size.is_some_and(|n| n > 4096) {
            sink.push(self.at(
                "smoke.batch-size",
                "`smoke.batch-size` must be at most 4096",
            ));
        }
        if let Some(golden) = &smoke.golden {
            self.input_path("smoke.golden.inputs", &golden.inputs, sink);
            self.input_path("smoke.golden.outputs", &golden.outputs, sink);
            for (key, value) in [("atol", golden.atol), ("rtol", golden.rtol)] {
                if let Some(v) = value
                    && !(v.is_finite() && v >= 0.0)
                {
                    sink.push(self.at(
                        &format!("smoke.golden.{key}"),
                        format!("`smoke.golden.{key}` must be 0 or more, found `{v}`"),
                    ));
                }
            }
        }
        let has_generator = self.raw.onnx.iter().any(|o| o.role == OnnxRole::Generator);
        if !has_generator {
            sink.push(self.at(
                "smoke",
                "`[smoke]` needs an `[[onnx]]` entry with `role = \"generator\"`",
            ));
        }
    }

    fn metrics_and_gates(&self, sink: &mut Sink) {
        for (name, metric) in &self.raw.metrics {
            let key = super::source::join_key("metrics", name);
            if crate::names::metric::is_measured_family(name) {
                sink.push(
                    Located::at_key(
                        self.source,
                        &key,
                        format!("metric name `{name}` uses a reserved prefix"),
                    )
                    .hint("`checkpoint.`, `artifact.` and `smoke.` name measured metrics"),
                );
            }
            self.input_path(&format!("{key}.file"), &metric.file, sink);
            if metric.path.is_empty() || metric.path.split('.').any(str::is_empty) {
                sink.push(self.at(
                    &format!("{key}.path"),
                    format!("`{key}.path` = `{}` is not a dotted path", metric.path),
                ));
            }
        }
        let known = known_metrics(self.raw);
        for (i, gate) in self.raw.gate.iter().enumerate() {
            let key = format!("gate[{i}]");
            if !is_known_metric(&gate.metric, &known) {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                let mut problem = self.at(
                    &format!("{key}.metric"),
                    format!("`{key}.metric` = `{}` is not a known metric", gate.metric),
                );
                problem.hint = Some(match did_you_mean(&gate.metric, &names) {
                    Some(guess) => format!("did you mean `{guess}`?"),
                    None => format!("known metrics: {}", names.join(", ")),
                });
                sink.push(problem);
            }
            let thresholds = [
                gate.min,
                gate.max,
                gate.max_regression,
                gate.max_regression_pct,
            ];
            if thresholds.iter().all(Option::is_none) {
                sink.push(
                    self.at(&key, format!("`{key}` sets no threshold"))
                        .hint("add `min`, `max`, `max-regression` or `max-regression-pct`"),
                );
            }
            for (name, value) in [
                ("min", gate.min),
                ("max", gate.max),
                ("max-regression", gate.max_regression),
                ("max-regression-pct", gate.max_regression_pct),
            ] {
                if let Some(v) = value
                    && !v.is_finite()
                {
                    sink.push(self.at(
                        &format!("{key}.{name}"),
                        format!("`{key}.{name}` must be a finite number"),
                    ));
                }
            }
            if let (Some(min), Some(max)) = (gate.min, gate.max)
                && min > max
            {
                sink.push(self.at(
                    &format!("{key}.min"),
                    format!("`{key}.min` ({min}) is greater than `{key}.max` ({max})"),
                ));
            }
            for (name, value) in [
                ("max-regression", gate.max_regression),
                ("max-regression-pct", gate.max_regression_pct),
            ] {
                if value.is_some_and(|v| v < 0.0) {
                    sink.push(self.at(
                        &format!("{key}.{name}"),
                        format!("`{key}.{name}` must be 0 or more"),
                    ));
                }
            }
        }
    }

    fn checks(&self, sink: &mut Sink) {
        let Some(checks) = &self.raw.checks else {
            return;
        };
        for (key, value) in [
            ("max-weights-mb", checks.max_weights_mb),
            ("max-generator-mb", checks.max_generator_mb),
            ("max-classifier-mb", checks.max_classifier_mb),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v > 0.0)
            {
                sink.push(self.at(
                    &format!("checks.{key}"),
                    format!("`checks.{key}` must be a positive number of MB, found `{v}`"),
                ));
            }
        }
    }

    fn card_and_bundle(&self, sink: &mut Sink) {
        if let Some(card) = &self.raw.card {
            if let Some(template) = &card.template {
                self.input_path("card.template", template, sink);
            }
            let known = known_metrics(self.raw);
            for (i, metric) in card.eval_metrics.iter().enumerate() {
                if !is_known_metric(metric, &known) {
                    sink.push(
                        self.at(
                            &format!("card.eval-metrics[{i}]"),
                            format!("`card.eval-metrics` names an unknown metric `{metric}`"),
                        )
                        .hint("declare it under `[metrics]` or use a measured metric"),
                    );
                }
            }
        }
        if let Some(samples) = self
            .raw
            .bundle
            .as_ref()
            .and_then(|b| b.samples_dir.as_ref())
            && check_bundle_path(samples).is_err()
        {
            sink.push(self.at(
                "bundle.samples-dir",
                format!("`bundle.samples-dir` = `{samples}` is not a path inside the bundle"),
            ));
        }
        if let Some(publish) = &self.raw.publish {
            for (i, pattern) in publish.github_assets.iter().enumerate() {
                if check_bundle_path(pattern).is_err() {
                    sink.push(self.at(
                        &format!("publish.github-assets[{i}]"),
                        format!("`publish.github-assets` entry `{pattern}` must be a path inside the bundle"),
                    ));
                }
            }
        }
    }
}

/// Bundle files `check` generates; no artifact or included file may take their names.
pub const GENERATED_FILES: &[&str] = &[
    "README.md",
    "config.json",
    "generation_config.json",
    "metrics.json",
    crate::names::SUMS_FILE,
    crate::identity::IDENTITY_FILE,
];

/// Why a Hub or GitHub repository id is not `owner/name`.
pub(super) fn check_repo_id(id: &str) -> Result<(), &'static str> {
    let mut parts = id.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("is not `owner/name`");
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 96
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !part.starts_with(['-', '.'])
            && !part.ends_with(['-', '.'])
            && !part.contains("--")
            && !part.contains("..")
    };
    if valid(owner) && valid(name) {
        Ok(())
    } else {
        Err("has characters the Hub does not allow (letters, digits, `-`, `_`, `.`)")
    }
}

/// Why `refs/tags/<prefix><version>` would not be a valid git ref name for some version
/// (`git check-ref-format`), the prefix being followed by a semantic version (which starts with
/// a digit and holds only ASCII letters, digits, `.` and `-`). The tag becomes a ref on GitHub and
/// on the Hub and a segment of request URLs, so what git refuses is refused here, at the key.
fn check_tag_prefix(prefix: &str) -> Result<(), String> {
    if let Some(c) = prefix.chars().find(|c| c.is_control()) {
        return Err(format!(
            "it holds the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return Err(format!(
            "it holds `{c}`, which git does not allow in a ref name"
        ));
    }
    if prefix.contains("..") {
        return Err("it holds `..`".to_owned());
    }
    if prefix.contains("@{") {
        return Err("it holds `@{`".to_owned());
    }
    if prefix.starts_with('/') {
        return Err("it starts with `/`".to_owned());
    }
    if prefix.contains("//") {
        return Err("it holds `//`".to_owned());
    }
    let mut parts = prefix.split('/').peekable();
    while let Some(part) = parts.next() {
        if part.starts_with('.') {
            return Err(format!("the part `{part}` starts with `.`"));
        }
        // The last part is followed by the version, so only the parts before a `/` can end so;
        // any case, as on a case-insensitive file system `A.LOCK` is a lock file too.
        let bytes = part.as_bytes();
        let ends_lock = bytes.len() >= 5 && bytes[bytes.len() - 5..].eq_ignore_ascii_case(b".lock");
        if parts.peek().is_some() && ends_lock {
            return Err(format!("the part `{part}` ends with `.lock`"));
        }
    }
    Ok(())
}

/// The bundle path of an `[[onnx]]` entry without `output`: `onnx/<file name>`.
pub(super) fn default_onnx_output(path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    format!("onnx/{name}")
}

/// An included file keeps its file name at the top of the bundle.
pub(super) fn bundle_name_of_include(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

/// The measured metric families, declared in [`crate::names::metric`] (kept under these names
/// for the stages that list them).
pub use crate::names::metric::{CHECKPOINT as CHECKPOINT_METRICS, SMOKE as SMOKE_METRICS};

/// Every metric name a gate may use with this configuration.
pub fn known_metrics(raw: &RawConfig) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = raw.metrics.keys().cloned().collect();
    known.extend(
        crate::names::metric::CHECKPOINT
            .iter()
            .map(|s| (*s).to_owned()),
    );
    known.extend(crate::names::metric::SMOKE.iter().map(|s| (*s).to_owned()));
    let outputs = raw
        .checkpoint
        .iter()
        .map(|c| c.output.clone())
        .chain(raw.onnx.iter().map(|o| {
            o.output
                .clone()
                .unwrap_or_else(|| default_onnx_output(&o.path))
        }));
    known.extend(outputs.map(|o| crate::names::metric::artifact_size_mb(&o)));
    let quantized = raw.onnx.iter().filter_map(|o| {
        o.quantize
            .as_ref()
            .map(|q| super::quantize::resolve(q, &o.path).output)
    });
    known.extend(quantized.map(|o| crate::names::metric::artifact_size_mb(&o)));
    for name in variant_names(raw) {
        known.extend(crate::names::metric::variant_metrics(&name));
    }
    known
}

/// Every variant name of the configuration: `[[onnx]] variant` and `quantize.variant`.
pub(super) fn variant_names(raw: &RawConfig) -> Vec<String> {
    raw.onnx
        .iter()
        .filter(|o| o.role == OnnxRole::Generator)
        .flat_map(|o| {
            o.variant.clone().into_iter().chain(
                o.quantize
                    .as_ref()
                    .map(|q| q.variant.clone().unwrap_or_else(|| "int8".to_owned())),
            )
        })
        .collect()
}

/// What is wrong with the `variant` and `quantize` keys of `[[onnx]]` number `i`: (field,
/// message, hint).
fn variant_problems(raw: &RawConfig, i: usize) -> Vec<(String, String, String)> {
    let onnx = &raw.onnx[i];
    let key = format!("onnx[{i}]");
    let mut out = Vec::new();
    let name_ok = |name: &str| {
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    let names_hint = "a variant name is lowercase letters, digits, `-` and `_`, e.g. `int8`";
    if let Some(variant) = &onnx.variant {
        if onnx.role != OnnxRole::Generator {
            out.push((
                "variant".to_owned(),
                format!(
                    "`{key}.variant` is set on a `{:?}` entry; only generators have variants",
                    onnx.role
                )
                .to_lowercase(),
                "remove `variant`, or set `role = \"generator\"`".to_owned(),
            ));
        }
        if !name_ok(variant) {
            out.push((
                "variant".to_owned(),
                format!("`{key}.variant` = `{variant}` is not a variant name"),
                names_hint.to_owned(),
            ));
        }
        if onnx.quantize.is_some() {
            out.push((
                "quantize".to_owned(),
                format!(
                    "`{key}` is a variant and asks for `quantize`; a variant is not quantized again"
                ),
                "put `quantize` on the full-precision generator's entry".to_owned(),
            ));
        }
        let main = raw
            .onnx
            .iter()
            .any(|o| o.role == OnnxRole::Generator && o.variant.is_none());
        if !main {
            out.push((
                "variant".to_owned(),
                format!("`{key}` is a variant of the generator, but no `[[onnx]]` generator without `variant` is configured"),
                "add the full-precision generator as `[[onnx]] role = \"generator\"`: a variant is judged against it".to_owned(),
            ));
        }
    }
    if let Some(quantize) = &onnx.quantize {
        if onnx.role != OnnxRole::Generator {
            out.push((
                "quantize".to_owned(),
                format!("`{key}.quantize` is set on an entry that is not a generator"),
                "quantized variants are built for the generator only".to_owned(),
            ));
        }
        if let Some(name) = &quantize.variant
            && !name_ok(name)
        {
            out.push((
                "quantize.variant".to_owned(),
                format!("`{key}.quantize.variant` = `{name}` is not a variant name"),
                names_hint.to_owned(),
            ));
        }
        if quantize.min_elements == Some(0) {
            out.push((
                "quantize.min-elements".to_owned(),
                format!("`{key}.quantize.min-elements` is 0"),
                "give the smallest weight (in elements) to quantize, e.g. 4096".to_owned(),
            ));
        }
    }
    let names = variant_names(raw);
    let mine: Vec<String> = onnx
        .variant
        .iter()
        .cloned()
        .chain(
            onnx.quantize
                .as_ref()
                .map(|q| q.variant.clone().unwrap_or_else(|| "int8".to_owned())),
        )
        .collect();
    for name in mine {
        if names.iter().filter(|n| **n == name).count() > 1 {
            let field = if onnx.variant.as_deref() == Some(&name) {
                "variant"
            } else {
                "quantize.variant"
            };
            out.push((
                field.to_owned(),
                format!("the variant name `{name}` is used twice"),
                "give each variant its own name".to_owned(),
            ));
        }
    }
    out
}

fn is_known_metric(name: &str, known: &BTreeSet<String>) -> bool {
    known.contains(name)
}

/// Parses `5GB`, `500MB`, `2GiB`, `1024` (bytes) into bytes. Decimal units are powers of 1000, as
/// transformers' `max_shard_size` reads them.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KIB" => 1024.0,
        "MIB" => 1024.0 * 1024.0,
        "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * factor;
    (1.0..1e15).contains(&bytes).then(|| bytes.round() as u64)
}

/// Refuses every key or value of the parsed file that looks like a Hugging Face or GitHub token
/// (`secrets::find_token_like`), wherever it sits: release.toml values end up in the model card,
/// `config.json` and the release notes, which are published. A token belongs in the job's
/// secrets; the message names what it looks like, never the value.
pub(super) fn no_tokens(root: &toml::de::DeTable<'_>, source: &Source, sink: &mut Sink) {
    use toml::de::DeValue;
    /// `what` names the place: `` `model.description` `` or, for a key (whose path would
    /// spell the token), `a key in `metrics``.
    fn refuse(
        source: &Source,
        span: std::ops::Range<usize>,
        what: &str,
        text: &str,
        sink: &mut Sink,
    ) {
        let Some((kind, prefix)) = crate::secrets::find_token_like(text) else {
            return;
        };
        let (line, column) = source.line_col(span.start);
        sink.push(Located {
            line,
            column,
            message: format!(
                "{what} holds what looks like {kind} (`{prefix}…`); a token must never be in \
                 release.toml, which is published with the model"
            ),
            hint: Some(
                "remove it and revoke the token; `publish` reads `HF_TOKEN` and `GITHUB_TOKEN` \
                 from the environment (in a workflow, from `secrets`)"
                    .to_owned(),
            ),
        });
    }
    fn walk(value: &toml::Spanned<DeValue<'_>>, path: &str, source: &Source, sink: &mut Sink) {
        match value.get_ref() {
            DeValue::String(text) => refuse(source, value.span(), &format!("`{path}`"), text, sink),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), source, sink);
                }
            }
            DeValue::Table(table) => table_walk(table, path, source, sink),
            _ => {}
        }
    }
    fn table_walk(table: &toml::de::DeTable<'_>, path: &str, source: &Source, sink: &mut Sink) {
        for (key, value) in table {
            let child = super::source::join_key(path, key.get_ref());
            let place = if path.is_empty() {
                "a top-level key".to_owned()
            } else {
                format!("a key in `{path}`")
            };
            refuse(source, key.span(), &place, key.get_ref(), sink);
            walk(value, &child, source, sink);
        }
    }
    table_walk(root, "", source, sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_transformers() {
        assert_eq!(parse_size("5GB"), Some(5_000_000_000));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("2GiB"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("5 gb"), Some(5_000_000_000));
        assert_eq!(parse_size("five"), None);
        assert_eq!(parse_size("0MB"), None);
        assert_eq!(parse_size("5PB"), None);
    }

    #[test]
    fn repo_ids_follow_hub_rules() {
        assert!(check_repo_id("d-oit/tinydit-cats").is_ok());
        assert!(check_repo_id("tinydit-cats").is_err());
        assert!(check_repo_id("a/b/c").is_err());
        assert!(check_repo_id("a/-b").is_err());
        assert!(check_repo_id("a/b c").is_err());
    }

    /// Issue 14: every rule of `git check-ref-format` a prefix can break (`tests/it` asks git
    /// itself about the same table).
    #[test]
    fn tag_prefixes_follow_git_ref_rules() {
        for fine in [
            "v",
            "",
            "release-",
            "models/tinydit-v",
            "v.",
            "rel/",
            "ü-",
            "v@",
            "V_",
        ] {
            assert_eq!(check_tag_prefix(fine), Ok(()), "{fine:?}");
        }
        for (hostile, why) in [
            ("v..", "`..`"),
            ("a..b-", "`..`"),
            ("v 1-", "` `"),
            ("v~", "`~`"),
            ("v^", "`^`"),
            ("v:", "`:`"),
            ("v?", "`?`"),
            ("v*", "`*`"),
            ("v[", "`[`"),
            ("v\\", "`\\`"),
            ("v\n", "U+000A"),
            ("\tv", "U+0009"),
            ("v\u{7f}", "U+007F"),
            ("\u{1b}[31mv", "U+001B"),
            ("v@{", "`@{`"),
            ("/v", "starts with `/`"),
            ("a//v", "`//`"),
            (".v", "`.v` starts with `.`"),
            ("a/.b/v", "`.b` starts with `.`"),
            ("a.lock/v", "`a.lock` ends with `.lock`"),
            ("a.LOCK/v", "`a.LOCK` ends with `.lock`"),
        ] {
            let err = check_tag_prefix(hostile).expect_err(hostile);
            assert!(err.contains(why), "{hostile:?}: {err}");
        }
    }

    #[test]
    fn values_that_look_like_tokens_are_refused_at_their_position_without_the_value() {
        let hf = format!("hf_{}", "Zq7".repeat(12));
        let gh = format!("ghs_{}", "k2".repeat(18));
        let text = format!(
            "[model]\nname = \"x\"\ndescription = \"my token is {hf} ok\"\n\n[card]\nextra = [\"a\", \"{gh}\"]\n\n[metrics.\"{hf}\"]\nfile = \"m.json\"\nwords = \"hf_hub_download and ghp_short\"\n"
        );
        let root = toml::de::DeTable::parse(&text).expect("valid toml");
        let source = Source::index(&text, &root);
        let mut sink = Sink::default();
        no_tokens(root.get_ref(), &source, &mut sink);
        let problems = sink.into_sorted();
        let found: Vec<(usize, usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.column, p.message.as_str()))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (3, 15));
        assert!(found[0].2.starts_with(
            "`model.description` holds what looks like a Hugging Face token (`hf_…`)"
        ));
        assert_eq!((found[1].0, found[1].1), (6, 15));
        assert!(
            found[1].2.contains("`card.extra[1]`")
                && found[1].2.contains("a GitHub token (`ghs_…`)")
        );
        assert_eq!((found[2].0, found[2].1), (8, 10));
        assert!(
            found[2]
                .2
                .starts_with("a key in `metrics` holds what looks like")
        );
        for problem in &problems {
            assert!(!problem.message.contains(&hf[3..]) && !problem.message.contains(&gh[4..]));
        }
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let keys = ["hub-repo", "github-repo", "license"];
        assert_eq!(did_you_mean("hub-rpo", &keys), Some("hub-repo"));
        assert_eq!(did_you_mean("licence", &keys), Some("license"));
        assert_eq!(did_you_mean("zzz", &keys), None);
    }
}
