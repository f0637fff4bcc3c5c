//! `devpulse plugin new`: a ready-to-build project in Rust, Python or JavaScript.

use super::templates::*;
use super::{AuthoringError, Lang, io};
use std::path::{Path, PathBuf};

/// What to create.
pub struct NewPlugin {
    pub name: String,
    pub lang: Lang,
    /// The project folder [default: `./NAME`].
    pub dir: Option<PathBuf>,
    /// For Rust: the SDK folder to depend on by path, or a version requirement.
    pub sdk: Option<String>,
}

/// Creates the project and returns its folder.
pub fn create(plugin: &NewPlugin) -> Result<PathBuf, AuthoringError> {
    crate::runtime::manifest::check_name(&plugin.name)?;
    let dir = plugin.dir.clone().unwrap_or_else(|| PathBuf::from(&plugin.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(AuthoringError::NotEmpty(dir));
    }
    let names = Names::of(&plugin.name);
    let files: Vec<(String, String)> = match plugin.lang {
        Lang::Rust => {
            let cargo = names.fill(RUST_CARGO).replace("{{sdk}}", &sdk_dependency(plugin.sdk.as_deref())?);
            vec![
                ("Cargo.toml".into(), cargo),
                ("src/lib.rs".into(), names.rename(RUST_LIB)),
                ("tests/native.rs".into(), names.rename(RUST_TESTS)),
                ("README.md".into(), names.fill(RUST_README)),
                (".gitignore".into(), RUST_GITIGNORE.into()),
            ]
        }
        Lang::Python => with_wit(vec![
            ("app.py".into(), names.fill(PYTHON_APP)),
            ("pyproject.toml".into(), names.fill(PYTHON_PROJECT)),
            ("README.md".into(), names.fill(PYTHON_README)),
            (".gitignore".into(), PYTHON_GITIGNORE.into()),
        ]),
        Lang::Js => with_wit(vec![
            ("app.js".into(), names.fill(JS_APP)),
            ("package.json".into(), names.fill(JS_PACKAGE)),
            ("README.md".into(), names.fill(JS_README)),
            (".gitignore".into(), JS_GITIGNORE.into()),
        ]),
    };
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(dir)
}

/// Python and JavaScript tools read the contract from `wit/`.
fn with_wit(mut files: Vec<(String, String)>) -> Vec<(String, String)> {
    files.extend(WIT_FILES.iter().map(|(name, text)| (format!("wit/{name}"), (*text).to_owned())));
    files
}

/// `{ path = "..." }` for an SDK folder, `"x.y"` for a version requirement.
fn sdk_dependency(sdk: Option<&str>) -> Result<String, AuthoringError> {
    let folder = |path: &Path| path.join("Cargo.toml").is_file().then(|| path.canonicalize().ok()).flatten();
    match sdk {
        Some(given) => match folder(Path::new(given)) {
            Some(path) => Ok(format!("{{ path = {:?} }}", path.display().to_string())),
            None => Ok(format!("{given:?}")),
        },
        None => folder(Path::new(SDK_DIR))
            .map(|path| format!("{{ path = {:?} }}", path.display().to_string()))
            .ok_or(AuthoringError::NoSdk),
    }
}

/// A plugin name in the forms the templates need.
struct Names {
    /// `standup-bot`: the plugin and package name.
    name: String,
    /// `standup_bot`: the Rust crate.
    krate: String,
    /// `StandupBot`: the plugin type.
    camel: String,
}

impl Names {
    fn of(name: &str) -> Self {
        let camel = name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect();
        Names { name: name.into(), krate: name.replace('-', "_"), camel }
    }

    /// Fills `{{name}}`, `{{crate}}` and `{{wit_version}}`.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{crate}}", &self.krate)
            .replace("{{wit_version}}", WIT_VERSION)
    }

    /// Turns the `hello` example into this plugin: the crate `hello` and the type
    /// `Hello` are renamed wherever they stand as words outside string literals.
    fn rename(&self, source: &str) -> String {
        replace_word(&replace_word(source, "hello", &self.krate), "Hello", &self.camel)
    }
}

/// Replaces `word` where it is not part of a longer identifier nor touching a quote.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"'));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = if at > 0 { rest[..at].chars().last() } else { out.chars().last() };
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        out.push_str(if boundary(before) && boundary(after) { with } else { word });
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_every_form() {
        let names = Names::of("standup-bot");
        assert_eq!((names.krate.as_str(), names.camel.as_str()), ("standup_bot", "StandupBot"));
    }

    #[test]
    fn renaming_leaves_strings_and_longer_words_alone() {
        let names = Names::of("standup-bot");
        let source = "use hello::{Hello, NAME};\npub struct Hello;\nlet s = \"Hello\"; // Hellos hello_world\n";
        assert_eq!(
            names.rename(source),
            "use standup_bot::{StandupBot, NAME};\npub struct StandupBot;\nlet s = \"Hello\"; // Hellos hello_world\n"
        );
    }

    #[test]
    fn the_rust_template_keeps_no_trace_of_hello_outside_strings() {
        let lib = Names::of("standup").rename(RUST_LIB);
        assert!(lib.contains("pub struct Standup;") && lib.contains("export_plugin!(Standup)"));
        assert!(lib.contains("\"Hello\""), "the default salutation stays");
        let tests = Names::of("standup").rename(RUST_TESTS);
        assert!(tests.contains("use standup::{") && !tests.contains("hello::"));
    }
}
