//! Which setting of a node table a read error is about. A node is read through serde's
//! buffering of its `type`-tagged settings, so the TOML parser places an error in a node on
//! the whole node table (`apps[0].nodes[1]`), not on the setting. The setting at fault is
//! found by reading the node again without each setting in turn: the one whose absence
//! changes the error is it (a misspelt setting, or a value of the wrong type). A kind's
//! missing settings are reported only after all its settings are read, so removing a
//! sound one leaves the error as it was, but removing `type` always changes it, so `type`
//! is named only when no other setting is. `id` and `title` are skipped: they are the node's
//! own fields, which the parser places itself (and removing `id` always changes the error).

use super::app::Node;

/// `apps[I].nodes[J].SETTING` when `key` (the key the parser's position names) is the node
/// table `apps[I].nodes[J]` of `text` and one setting of it is at fault; `None` otherwise.
pub(super) fn field_at_fault(text: &str, key: &str) -> Option<String> {
    let document: toml::Table = toml::from_str(text).ok()?;
    let apps = document.get("apps")?.as_array()?;
    for (i, app) in apps.iter().enumerate() {
        let Some(nodes) = app.get("nodes").and_then(toml::Value::as_array) else { continue };
        for (j, node) in nodes.iter().enumerate() {
            let path = format!("apps[{i}].nodes[{j}]");
            if path != key {
                continue;
            }
            let table = node.as_table()?;
            let error = read(table).err()?;
            let changes_the_error = |field: &&String| {
                let mut without = table.clone();
                without.remove(*field);
                read(&without).err().as_ref() != Some(&error)
            };
            let candidates: Vec<&String> = table
                .keys()
                .filter(|f| !matches!(f.as_str(), "id" | "title"))
                .filter(changes_the_error)
                .collect();
            // Without `type` no kind is read at all: it is at fault only when nothing else is.
            let field = candidates.iter().find(|f| f.as_str() != "type").or(candidates.first())?;
            return Some(format!("{path}.{field}"));
        }
    }
    None
}

/// The node `table` reads as, or why it does not.
fn read(table: &toml::Table) -> Result<Node, toml::de::Error> {
    toml::Value::Table(table.clone()).try_into::<Node>()
}
