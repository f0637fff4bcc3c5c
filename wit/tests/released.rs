//! Guards on the released WIT versions: a released folder never changes, each
//! version only adds to the one before (so components built against it keep
//! loading), and the constants, `latest/` and the folders agree.

use devpulse_wit::{LATEST, PACKAGE, SUPPORTED};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wit_parser::{Resolve, Type, TypeDefKind, WorldItem, WorldKey};

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// The released folders, `v0.1.0` and so on, oldest first.
fn released_folders() -> Vec<String> {
    let mut folders: Vec<(Vec<u64>, String)> = std::fs::read_dir(wit_dir())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let version = name.strip_prefix('v')?;
            let parts = version.split('.').map(str::parse).collect::<Result<Vec<u64>, _>>().ok()?;
            Some((parts, name))
        })
        .collect();
    folders.sort();
    folders.into_iter().map(|(_, name)| name).collect()
}

#[test]
fn released_files_never_change() {
    let recorded: BTreeMap<String, String> = std::fs::read_to_string(wit_dir().join("RELEASED"))
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once("  ").map(|(hash, file)| (file.to_owned(), hash.to_owned())))
        .collect();
    let mut found = BTreeMap::new();
    for folder in released_folders() {
        for entry in std::fs::read_dir(wit_dir().join(&folder)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{folder}/{}", path.file_name().unwrap().to_string_lossy());
            found.insert(name, hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
        }
    }
    for (file, hash) in &found {
        match recorded.get(file) {
            Some(expected) => assert_eq!(
                expected, hash,
                "{file} changed after its release: released folders are frozen. Put the change in a new \
                 version folder (or, if it cannot be additive, in PENDING.md)"
            ),
            None => panic!(
                "{file} is not recorded in wit/RELEASED: a new version records its files' SHA-256 there \
                 when it is released (`sha256sum` format)"
            ),
        }
    }
    for file in recorded.keys() {
        assert!(found.contains_key(file), "{file} is recorded in wit/RELEASED but missing");
    }
}

#[test]
fn the_constants_name_the_folders() {
    let folders = released_folders();
    let versions: Vec<&str> = folders.iter().map(|folder| &folder[1..]).collect();
    assert_eq!(versions, SUPPORTED, "SUPPORTED lists every released folder, oldest first");
    assert_eq!(SUPPORTED.last(), Some(&LATEST), "LATEST is the newest version");
    let latest = std::fs::read_link(wit_dir().join("latest")).expect("wit/latest is a link");
    assert_eq!(latest, Path::new(&format!("v{LATEST}")), "wit/latest points at the newest folder");
    for folder in &folders {
        let mut resolve = Resolve::default();
        let (package, _) = resolve.push_dir(wit_dir().join(folder)).unwrap();
        let name = &resolve.packages[package].name;
        assert_eq!(format!("{}:{}", name.namespace, name.name), PACKAGE);
        assert_eq!(name.version.as_ref().map(ToString::to_string).as_deref(), Some(&folder[1..]), "{folder}");
    }
}

#[test]
fn each_version_only_adds_to_the_one_before() {
    let folders = released_folders();
    for pair in folders.windows(2) {
        let (old, new) = (Contract::read(&pair[0]), Contract::read(&pair[1]));
        for (item, shape) in &old.items {
            match new.items.get(item) {
                Some(now) => assert_eq!(now, shape, "{} changes {item} of {}", pair[1], pair[0]),
                None => panic!("{} drops {item}, which {} has", pair[1], pair[0]),
            }
        }
    }
}

/// Everything a version declares, each item with its shape written out in
/// full (types expanded), so two versions compare item by item.
struct Contract {
    items: BTreeMap<String, String>,
}

impl Contract {
    fn read(folder: &str) -> Self {
        let mut resolve = Resolve::default();
        let (package, _) = resolve.push_dir(wit_dir().join(folder)).unwrap();
        let mut items = BTreeMap::new();
        for (name, &interface) in &resolve.packages[package].interfaces {
            let interface = &resolve.interfaces[interface];
            for (type_name, &id) in &interface.types {
                items.insert(format!("type {name}.{type_name}"), shape_of(&resolve, &resolve.types[id].kind));
            }
            for (function_name, function) in &interface.functions {
                let params: Vec<String> = function
                    .params
                    .iter()
                    .map(|param| format!("{}: {}", param.name, ty(&resolve, &param.ty)))
                    .collect();
                let result = function.result.as_ref().map_or_else(|| "()".to_owned(), |result| ty(&resolve, result));
                items.insert(format!("func {name}.{function_name}"), format!("({}) -> {result}", params.join(", ")));
            }
        }
        for &world in resolve.packages[package].worlds.values() {
            let world = &resolve.worlds[world];
            for (direction, entries) in [("import", &world.imports), ("export", &world.exports)] {
                for (key, item) in entries {
                    let name = match (key, item) {
                        (WorldKey::Name(name), _) => name.clone(),
                        (WorldKey::Interface(id), _) => resolve.interfaces[*id].name.clone().unwrap_or_default(),
                    };
                    let kind = match item {
                        WorldItem::Interface { .. } => "interface",
                        WorldItem::Function(_) => "function",
                        WorldItem::Type { .. } => "type",
                    };
                    items.insert(format!("world {} {direction} {name}", world.name), kind.to_owned());
                }
            }
        }
        Contract { items }
    }
}

fn ty(resolve: &Resolve, ty: &Type) -> String {
    match ty {
        Type::Id(id) => {
            let def = &resolve.types[*id];
            match &def.name {
                Some(name) => format!("{name}={}", shape_of(resolve, &def.kind)),
                None => shape_of(resolve, &def.kind),
            }
        }
        primitive => format!("{primitive:?}").to_lowercase(),
    }
}

fn shape_of(resolve: &Resolve, kind: &TypeDefKind) -> String {
    let opt = |value: &Option<Type>| value.as_ref().map_or_else(|| "_".to_owned(), |value| ty(resolve, value));
    match kind {
        TypeDefKind::Record(record) => {
            let fields: Vec<String> =
                record.fields.iter().map(|field| format!("{}: {}", field.name, ty(resolve, &field.ty))).collect();
            format!("record {{{}}}", fields.join(", "))
        }
        TypeDefKind::Variant(variant) => {
            let cases: Vec<String> =
                variant.cases.iter().map(|case| format!("{}({})", case.name, opt(&case.ty))).collect();
            format!("variant {{{}}}", cases.join(", "))
        }
        TypeDefKind::Enum(cases) => {
            let cases: Vec<&str> = cases.cases.iter().map(|case| case.name.as_str()).collect();
            format!("enum {{{}}}", cases.join(", "))
        }
        TypeDefKind::Flags(flags) => {
            let flags: Vec<&str> = flags.flags.iter().map(|flag| flag.name.as_str()).collect();
            format!("flags {{{}}}", flags.join(", "))
        }
        TypeDefKind::Tuple(tuple) => {
            let types: Vec<String> = tuple.types.iter().map(|t| ty(resolve, t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        TypeDefKind::Option(inner) => format!("option<{}>", ty(resolve, inner)),
        TypeDefKind::Result(result) => format!("result<{}, {}>", opt(&result.ok), opt(&result.err)),
        TypeDefKind::List(inner) => format!("list<{}>", ty(resolve, inner)),
        TypeDefKind::Type(inner) => ty(resolve, inner),
        other => format!("{other:?}"),
    }
}
