//! `[space]`: the demo Hugging Face Space released with every version, its keys, their rules and
//! their defaults. What `check` writes from it is `crate::space`'s.

use super::raw::{CfgMode, OnnxRole, RawConfig};
use super::source::Source;
use crate::error::Located;

/// The colours the Hub accepts for a Space's `colorFrom` / `colorTo`.
pub const SPACE_COLORS: &[&str] = &[
    "red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray",
];

/// The longest `short_description` the Hub accepts.
pub const MAX_SHORT_DESCRIPTION: usize = 60;

/// The value of `space.generator` that names the full (float) generator.
pub const FULL_GENERATOR: &str = "full";

/// Upper bounds of the defaults the page shows, as `sample` has them.
const MAX_STEPS: u32 = 1000;
const MAX_SCALE: f32 = 100.0;

/// `[space]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceConfig {
    /// The Space repository.
    pub repo: String,
    /// Title.
    pub title: String,
    /// Emoji.
    pub emoji: String,
    /// Gradient start.
    pub color_from: String,
    /// Gradient end.
    pub color_to: String,
    /// The card's one line.
    pub short_description: String,
    /// The generator variant the page runs; `None` for the full generator.
    pub variant: Option<String>,
    /// Class index shown first.
    pub breed: usize,
    /// Seed shown first.
    pub seed: u64,
    /// Steps shown first.
    pub steps: u32,
    /// Guidance scale shown first.
    pub guidance_scale: f32,
}

/// Names of the generator variants the configuration declares or builds, in file order.
fn variant_names(raw: &RawConfig) -> Vec<String> {
    let mut names = Vec::new();
    for onnx in raw.onnx.iter().filter(|o| o.role == OnnxRole::Generator) {
        if let Some(v) = &onnx.variant {
            names.push(v.clone());
        } else if let Some(q) = &onnx.quantize {
            names.push(q.variant.clone().unwrap_or_else(|| "int8".to_owned()));
        }
    }
    names
}

/// The quantized variant `check` builds, if any (the default generator of the page).
fn quantized_variant(raw: &RawConfig) -> Option<String> {
    raw.onnx
        .iter()
        .filter(|o| o.role == OnnxRole::Generator && o.variant.is_none())
        .find_map(|o| o.quantize.as_ref())
        .map(|q| q.variant.clone().unwrap_or_else(|| "int8".to_owned()))
}

/// The rules of `[space]`: each problem at its key. `repo_id` says why a repository id is not
/// one (`validate`'s rule for `model.hub-repo`).
pub(super) fn check(
    raw: &RawConfig,
    source: &Source,
    repo_id: fn(&str) -> Result<(), &'static str>,
) -> Vec<Located> {
    let mut sink = Vec::new();
    let Some(space) = &raw.space else {
        return sink;
    };
    let at = |key: &str, message: String| Located::at_value(source, key, message);
    if let Err(why) = repo_id(&space.repo) {
        sink.push(at(
            "space.repo",
            format!("`space.repo` = `{}` {why}", space.repo),
        ));
    } else if space.repo == raw.model.hub_repo {
        sink.push(
            at(
                "space.repo",
                format!("`space.repo` = `{}` is the model repository", space.repo),
            )
            .hint("a Space is a repository of its own, e.g. `owner/name-demo`"),
        );
    }
    if let Some(title) = &space.title
        && (title.trim().is_empty() || title.chars().any(char::is_control))
    {
        sink.push(at(
            "space.title",
            "`space.title` is empty or holds a control character".to_owned(),
        ));
    }
    if let Some(emoji) = &space.emoji
        && (emoji.trim().is_empty() || emoji.chars().count() > 8)
    {
        sink.push(at(
            "space.emoji",
            format!("`space.emoji` = `{emoji}` is not one emoji"),
        ));
    }
    for key in ["color-from", "color-to"] {
        let value = if key == "color-from" {
            &space.color_from
        } else {
            &space.color_to
        };
        if let Some(color) = value
            && !SPACE_COLORS.contains(&color.as_str())
        {
            let mut problem = at(
                &format!("space.{key}"),
                format!("`space.{key}` = `{color}` is not a Space colour"),
            );
            problem = match crate::vocab::did_you_mean(color, SPACE_COLORS) {
                Some(guess) => problem.hint(format!("did you mean `{guess}`?")),
                None => problem.hint(format!("the Hub accepts {}", SPACE_COLORS.join(", "))),
            };
            sink.push(problem);
        }
    }
    if let Some(text) = &space.short_description
        && (text.chars().count() > MAX_SHORT_DESCRIPTION || text.contains(['\n', '\r']))
    {
        sink.push(at(
            "space.short-description",
            format!(
                "`space.short-description` must be one line of at most \
                 {MAX_SHORT_DESCRIPTION} characters, found {}",
                text.chars().count()
            ),
        ));
    }
    let Some(generator) = &raw.generator else {
        sink.push(
            Located::at_key(
                source,
                "space",
                "`[space]` needs a `[generator]`".to_owned(),
            )
            .hint("the page runs the generator ONNX model in the browser"),
        );
        return sink;
    };
    if !raw
        .onnx
        .iter()
        .any(|o| o.role == OnnxRole::Generator && o.variant.is_none())
    {
        sink.push(
            Located::at_key(
                source,
                "space",
                "`[space]` needs an `[[onnx]]` with `role = \"generator\"`".to_owned(),
            )
            .hint("the page runs the generator ONNX model in the browser"),
        );
    }
    if let Some(name) = &space.generator
        && name != FULL_GENERATOR
    {
        let names = variant_names(raw);
        if !names.contains(name) {
            let mut choices: Vec<&str> = vec![FULL_GENERATOR];
            choices.extend(names.iter().map(String::as_str));
            sink.push(
                at(
                    "space.generator",
                    format!("`space.generator` = `{name}` is not a generator of this release"),
                )
                .hint(format!("choose one of {}", choices.join(", "))),
            );
        }
    }
    if let Some(breed) = &space.breed
        && !generator.classes.contains(breed)
    {
        let names: Vec<&str> = generator.classes.iter().map(String::as_str).collect();
        let hint = match crate::vocab::did_you_mean(breed, &names) {
            Some(guess) => format!("did you mean `{guess}`?"),
            None => format!("the classes are {}", names.join(", ")),
        };
        sink.push(
            at(
                "space.breed",
                format!("`space.breed` = `{breed}` is not a class"),
            )
            .hint(hint),
        );
    }
    if let Some(steps) = space.steps
        && !(1..=MAX_STEPS).contains(&steps)
    {
        sink.push(at(
            "space.steps",
            format!("`space.steps` must be within 1..={MAX_STEPS}, found {steps}"),
        ));
    }
    if let Some(scale) = space.guidance_scale {
        if !(scale.is_finite() && (0.0..=MAX_SCALE).contains(&scale)) {
            sink.push(at(
                "space.guidance-scale",
                format!("`space.guidance-scale` must be within 0..={MAX_SCALE}, found {scale}"),
            ));
        } else if generator.cfg.unwrap_or(CfgMode::Explicit) != CfgMode::Explicit {
            sink.push(
                at(
                    "space.guidance-scale",
                    "`space.guidance-scale` has no effect: the generator's guidance is not \
                     explicit"
                        .to_owned(),
                )
                .hint("a baked guidance scale is fixed in the graph; drop `space.guidance-scale`"),
            );
        }
    }
    sink
}

/// The resolved `[generator]` facts `[space]` defaults from: classes, steps, guidance scale.
pub(super) struct GeneratorDefaults<'a> {
    pub classes: &'a [String],
    pub steps: u32,
    pub cfg_scale: f32,
}

/// `[space]` with its defaults.
pub(super) fn resolve(
    raw: &RawConfig,
    generator: Option<GeneratorDefaults<'_>>,
    smoke_seed: Option<u64>,
) -> Option<SpaceConfig> {
    let space = raw.space.as_ref()?;
    let generator = generator?;
    let variant = match space.generator.as_deref() {
        Some(FULL_GENERATOR) => None,
        Some(name) => Some(name.to_owned()),
        None => quantized_variant(raw),
    };
    Some(SpaceConfig {
        repo: space.repo.clone(),
        title: space
            .title
            .clone()
            .unwrap_or_else(|| raw.model.name.clone()),
        emoji: space.emoji.clone().unwrap_or_else(|| "🐱".to_owned()),
        color_from: space
            .color_from
            .clone()
            .unwrap_or_else(|| "pink".to_owned()),
        color_to: space
            .color_to
            .clone()
            .unwrap_or_else(|| "indigo".to_owned()),
        short_description: space
            .short_description
            .clone()
            .unwrap_or_else(|| "Generate images in your browser with ONNX Runtime Web".to_owned()),
        variant,
        breed: space
            .breed
            .as_ref()
            .and_then(|b| generator.classes.iter().position(|c| c == b))
            .unwrap_or(0),
        seed: space.seed.or(smoke_seed).unwrap_or(42),
        steps: space.steps.unwrap_or(generator.steps),
        guidance_scale: space.guidance_scale.unwrap_or(generator.cfg_scale),
    })
}
