//! Finding a CJK font on disk.
//!
//! A slip needs one CJK family (regular and, if there is one, bold). A CJK collection is 5–30 MB
//! per file, so only the best family's files are read: known Debian file names first (cheap, by
//! name), then, only if none is present, every font file is probed and the first few with CJK
//! faces are kept.

use std::fs;
use std::path::{Path, PathBuf};

use typst::foundations::Bytes;
use typst::text::{Font, FontWeight};

/// Characters a face must have to count as CJK-capable (common ones a slip always prints).
const CJK_PROBE: [char; 6] = ['中', '国', '医', '疗', '结', '算'];

/// Known files, best group first; a group is one family's weights. Names are lower case.
const PREFERRED: &[&[&str]] = &[
    // Debian fonts-noto-cjk.
    &["notosanscjk-regular.ttc", "notosanscjk-bold.ttc"],
    // Adobe/Google region-specific releases of the same design.
    &["notosanscjksc-regular.otf", "notosanscjksc-bold.otf"],
    &["notosanssc-regular.otf", "notosanssc-bold.otf", "notosanssc-regular.ttf", "notosanssc-bold.ttf"],
    // Debian fonts-wqy-microhei (one weight).
    &["wqy-microhei.ttc"],
    // Debian fonts-wqy-zenhei.
    &["wqy-zenhei.ttc"],
    &["notoserifcjk-regular.ttc", "notoserifcjk-bold.ttc"],
];

/// When probing unknown files: stop after this many files with CJK faces.
const MAX_PROBED_FILES: usize = 3;

/// Do not descend deeper than this (and never through symlinked directories: no loops).
const MAX_DEPTH: usize = 12;

pub(crate) struct Found {
    /// CJK faces only.
    pub fonts: Vec<Font>,
    /// Distinct families of `fonts`, Simplified Chinese first.
    pub families: Vec<String>,
    /// The first family has a face of weight 600 or more.
    pub has_bold: bool,
}

/// Searches `dirs` in order; the first directory with a CJK font wins.
pub(crate) fn find_cjk(dirs: &[PathBuf]) -> Option<Found> {
    dirs.iter().find_map(|dir| find_in(dir))
}

fn find_in(dir: &Path) -> Option<Found> {
    let mut files = Vec::new();
    walk(dir, 0, &mut files);
    // Deterministic choice whatever order the file system lists entries in.
    files.sort();

    for group in PREFERRED {
        let chosen: Vec<&PathBuf> =
            group.iter().filter_map(|name| files.iter().find(|f| lower_file_name(f).as_deref() == Some(*name))).collect();
        let fonts: Vec<Font> = chosen.into_iter().flat_map(|f| load_cjk_faces(f)).collect();
        if !fonts.is_empty() {
            return Some(found(fonts));
        }
    }

    let mut fonts = Vec::new();
    let mut files_kept = 0;
    for file in &files {
        let faces = load_cjk_faces(file);
        if !faces.is_empty() {
            fonts.extend(faces);
            files_kept += 1;
            if files_kept == MAX_PROBED_FILES {
                break;
            }
        }
    }
    (!fonts.is_empty()).then(|| found(fonts))
}

fn found(fonts: Vec<Font>) -> Found {
    let mut families: Vec<String> = Vec::new();
    for font in &fonts {
        if !families.contains(&font.info().family) {
            families.push(font.info().family.clone());
        }
    }
    // Stable: keeps file order within a rank.
    families.sort_by_key(|f| family_rank(f));
    let has_bold = fonts.iter().any(|f| f.info().family == families[0] && f.info().variant.weight >= FontWeight::SEMIBOLD);
    Found { fonts, families, has_bold }
}

/// Simplified Chinese forms first (the slips are for mainland China), then the rest, monospaced
/// families last.
fn family_rank(family: &str) -> u8 {
    let f = family.to_lowercase();
    if f.contains("mono") {
        // Noto's collections also hold monospaced CJK families: a fallback only.
        3
    } else if f.ends_with(" sc") || f.contains(" sc ") || f.contains("hei") || f.ends_with(" cn") {
        0
    } else if [" tc", " hk", " jp", " kr"].iter().any(|s| f.ends_with(s)) {
        2
    } else {
        1
    }
}

/// The faces of one file that cover [`CJK_PROBE`]; empty when unreadable or not CJK. The file's
/// bytes are dropped again unless a face is kept.
fn load_cjk_faces(path: &Path) -> Vec<Font> {
    let Ok(data) = fs::read(path) else {
        return Vec::new();
    };
    Font::iter(Bytes::new(data)).filter(|font| CJK_PROBE.iter().all(|&c| font.info().coverage.contains(c as u32))).collect()
}

fn lower_file_name(path: &Path) -> Option<String> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_lowercase)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, depth + 1, out);
        } else if is_font_file(&path) && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            // `metadata` follows symlinks: a link to a font file counts, a dangling one does not.
            out.push(path);
        }
    }
}

fn is_font_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| ["ttc", "otf", "ttf", "otc"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}
