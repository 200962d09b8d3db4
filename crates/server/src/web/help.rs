//! 帮助 (help): a page per area of the workbench — what the page is for, what each figure means and where
//! it comes from, what to do next — written for officials in `data/help/help.toml` and linked from the
//! header of every page of that area. Every signed-in role may read it (it holds no data).

use std::sync::OnceLock;

use askama::Template;
use axum::extract::Path;
use serde::Deserialize;

use super::{Page, WebError, WebResult, WebUser};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpFile {
    pub area: Vec<Area>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub id: String,
    pub paths: Vec<String>,
    pub title: String,
    pub purpose: String,
    #[serde(default)]
    pub figures: Vec<Figure>,
    #[serde(default)]
    pub next: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub name: String,
    pub meaning: String,
    pub source: String,
}

/// The shipped help (checked by the test below).
pub fn help() -> &'static HelpFile {
    static H: OnceLock<HelpFile> = OnceLock::new();
    H.get_or_init(|| toml::from_str(include_str!("../../../../data/help/help.toml")).unwrap_or(HelpFile { area: Vec::new() }))
}

/// The help area of a page address: the longest path prefix that matches.
pub fn area_for(path: &str) -> Option<&'static Area> {
    let path = path.split('?').next().unwrap_or("");
    help()
        .area
        .iter()
        .flat_map(|a| a.paths.iter().map(move |p| (p, a)))
        .filter(|(p, _)| path == p.as_str() || path.starts_with(&format!("{p}/")) || path.starts_with(&format!("{p}?")))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, a)| a)
}

#[derive(Template)]
#[template(path = "help.html")]
struct HelpView {
    area: Option<&'static Area>,
    areas: Vec<(String, String)>,
}

/// `GET /web/help`: every area.
pub async fn index(u: WebUser) -> WebResult {
    render(&u, None)
}

/// `GET /web/help/{id}`
pub async fn area(u: WebUser, Path(id): Path<String>) -> WebResult {
    let a = help().area.iter().find(|a| a.id == id).ok_or_else(|| WebError::not_found("没有这个帮助页面"))?;
    render(&u, Some(a))
}

fn render(u: &WebUser, area: Option<&'static Area>) -> WebResult {
    let v = HelpView { area, areas: help().area.iter().map(|a| (format!("/web/help/{}", a.id), a.title.clone())).collect() };
    let html = v.render().map_err(|e| WebError::internal(&format!("template help.html: {e}")))?;
    let mut page = Page::new(area.map_or_else(|| "帮助".to_string(), |a| format!("帮助 · {}", a.title)));
    page.crumbs.push(("帮助".into(), if area.is_some() { "/web/help".into() } else { String::new() }));
    if let Some(a) = area {
        page.crumbs.push((a.title.clone(), String::new()));
    }
    page.push(&html);
    Ok(page.render(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_parses_and_covers_every_menu_page() {
        let h: HelpFile = toml::from_str(include_str!("../../../../data/help/help.toml")).expect("data/help/help.toml");
        assert!(h.area.len() >= 20);
        for p in
            ["/web/region/620422", "/web/worklist", "/web/window", "/web/forms/expired_drugs/entry", "/web/resettle/run/3", "/web/import"]
        {
            assert!(area_for(p).is_some(), "no help for {p}");
        }
        assert_eq!(area_for("/web/forms/indicators").map(|a| a.id.as_str()), Some("forms"));
        assert!(area_for("/web/regionx").is_none(), "prefixes match whole segments");
        // Written for officials: no developer text.
        let text = include_str!("../../../../data/help/help.toml");
        let body: String = text.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("paths")).collect();
        for bad in ["R-", ".toml", ".csv", "baozhang ", "seed", "种子", "issue", "--"] {
            assert!(!body.contains(bad), "help text contains “{bad}”");
        }
        for a in &h.area {
            assert!(!a.purpose.is_empty() && !a.title.is_empty(), "{}", a.id);
        }
    }
}
