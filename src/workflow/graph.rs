//! Graph helpers: successors (following if-else branches) and cycle detection.

use std::collections::{HashMap, HashSet};

use super::app::AppDefinition;

/// Ids of the nodes an edge leads to from `node`, keeping only `branch` edges when given.
pub fn successors<'a>(app: &'a AppDefinition, node: &str, branch: Option<&str>) -> Vec<&'a str> {
    app.edges
        .iter()
        .filter(|e| e.source == node)
        .filter(|e| branch.is_none() || e.source_handle.as_deref() == branch)
        .map(|e| e.target.as_str())
        .collect()
}

/// A node on a cycle, if following edges can come back to a node.
pub fn cycle_node(app: &AppDefinition) -> Option<&str> {
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &app.edges {
        out.entry(e.source.as_str()).or_default().push(e.target.as_str());
    }
    // Iterative DFS with colours: 1 = on the stack, 2 = done.
    let mut colour: HashMap<&str, u8> = HashMap::new();
    for start in app.nodes.iter().map(|n| n.id.as_str()) {
        if colour.contains_key(start) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        colour.insert(start, 1);
        while let Some((node, i)) = stack.pop() {
            let next = out.get(node).and_then(|v| v.get(i)).copied();
            match next {
                Some(n) => {
                    stack.push((node, i + 1));
                    match colour.get(n) {
                        Some(1) => return Some(n),
                        Some(_) => {}
                        None => {
                            colour.insert(n, 1);
                            stack.push((n, 0));
                        }
                    }
                }
                None => {
                    colour.insert(node, 2);
                }
            }
        }
    }
    None
}

/// Nodes reachable from the start (used to reject unreachable ends).
pub fn reachable<'a>(app: &'a AppDefinition, from: &'a str) -> HashSet<&'a str> {
    let mut seen = HashSet::from([from]);
    let mut todo = vec![from];
    while let Some(n) = todo.pop() {
        for next in successors(app, n, None) {
            if seen.insert(next) {
                todo.push(next);
            }
        }
    }
    seen
}
