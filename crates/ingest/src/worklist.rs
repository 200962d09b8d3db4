//! Reconciliation worklists for the villages: one XLSX per township, a sheet per village, with the
//! action each finding calls for. ID numbers show only their first 6 and last 4 digits and names
//! only their first character unless the caller is allowed to see them (PIPL).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baozhang_store::reconcile::{class_info, Finding};
use baozhang_store::registry::RegionRow;

use crate::table::{write_xlsx, TableError};

/// "620422********123X"
pub fn mask_id(id: &str) -> String {
    let n = id.chars().count();
    if n <= 10 {
        return "*".repeat(n);
    }
    id.chars().enumerate().map(|(i, c)| if i < 6 || i >= n - 4 { c } else { '*' }).collect()
}

/// "张**"
pub fn mask_name(name: &str) -> String {
    let mut it = name.chars();
    match it.next() {
        Some(first) => std::iter::once(first).chain(it.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Writes the worklists; returns the files written.
pub fn export_worklists(dir: &Path, findings: &[Finding], regions: &[RegionRow], unmasked: bool) -> Result<Vec<PathBuf>, TableError> {
    let names: BTreeMap<&str, &str> = regions.iter().map(|r| (r.code.as_str(), r.name.as_str())).collect();
    std::fs::create_dir_all(dir).map_err(|e| TableError::Write { file: dir.display().to_string(), reason: e.to_string() })?;
    // township (9 digits) → village → rows
    let mut by_town: BTreeMap<String, BTreeMap<String, Vec<&Finding>>> = BTreeMap::new();
    for f in findings {
        let v = f.village_code.clone().unwrap_or_else(|| "未知村".into());
        let t = if v.len() >= 9 { v[..9].to_string() } else { "未知乡镇".into() };
        by_town.entry(t).or_default().entry(v).or_default().push(f);
    }
    let header: Vec<String> =
        ["序号", "比对类别", "处理措施", "姓名", "证件号码", "户编号", "说明", "本次新增", "处理结果", "处理人", "处理日期"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let mut files = Vec::new();
    for (town, villages) in &by_town {
        let town_name = names.get(town.as_str()).copied().unwrap_or(town.as_str());
        let sheets: Vec<(String, Vec<String>, Vec<Vec<String>>)> = villages
            .iter()
            .map(|(v, rows)| {
                let vname = names.get(v.as_str()).copied().unwrap_or(v.as_str()).replace("村民委员会", "村").replace("居民委员会", "");
                let data = rows
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let (_, zh, action) = class_info(&f.class).unwrap_or(("", "", ""));
                        vec![
                            (i + 1).to_string(),
                            zh.to_string(),
                            action.to_string(),
                            if unmasked { f.name.clone() } else { mask_name(&f.name) },
                            if unmasked { f.id_no.clone() } else { mask_id(&f.id_no) },
                            f.household_no.clone().unwrap_or_default(),
                            baozhang_core::money::yuan_in_text(f.detail.as_deref().unwrap_or_default()),
                            if f.is_new { "是".into() } else { "否".into() },
                            String::new(),
                            String::new(),
                            String::new(),
                        ]
                    })
                    .collect();
                (vname, header.clone(), data)
            })
            .collect();
        let path = dir.join(format!("{town}-{town_name}-比对工作清单.xlsx"));
        write_xlsx(&path, &sheets)?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_what_the_rules_allow() {
        assert_eq!(mask_id("62042219800101123X"), "620422********123X");
        assert_eq!(mask_name("张小明"), "张**");
        assert_eq!(mask_name(""), "");
    }
}
