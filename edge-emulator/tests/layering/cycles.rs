//! Cycles in a directed graph: its strongly connected components (Tarjan) and, for printing,
//! one shortest cycle through each.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The strongly connected components with more than one member (Tarjan), each sorted, in order.
pub fn cycles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct Walk<'a, N> {
        graph: &'a BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<&'a N, usize>,
        low: BTreeMap<&'a N, usize>,
        stack: Vec<&'a N>,
        on_stack: BTreeSet<&'a N>,
        out: Vec<Vec<N>>,
    }
    impl<'a, N: Ord + Clone> Walk<'a, N> {
        fn visit(&mut self, node: &'a N) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.clone());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.out.sort();
    walk.out
}

/// The shortest cycle from the first member back to itself, within `members`.
pub fn cycle_through<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>, members: &[N]) -> Vec<N> {
    let start = &members[0];
    let inside: BTreeSet<&N> = members.iter().collect();
    let mut came_from: BTreeMap<&N, &N> = BTreeMap::new();
    let mut frontier = VecDeque::from([start]);
    while let Some(node) = frontier.pop_front() {
        for next in graph.get(node).into_iter().flatten() {
            if !inside.contains(next) {
                continue;
            }
            if next == start {
                let mut path = vec![start.clone(), node.clone()];
                let mut at = node;
                while at != start {
                    at = came_from[at];
                    path.push(at.clone());
                }
                // Built backwards (start, node, …, start): reversed, it runs start → … → node → start.
                path.reverse();
                return path;
            }
            if next != start && !came_from.contains_key(next) {
                came_from.insert(next, node);
                frontier.push_back(next);
            }
        }
    }
    members.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(u8, u8)]) -> BTreeMap<u8, BTreeSet<u8>> {
        let mut graph: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
        for &(a, b) in edges {
            graph.entry(a).or_default().insert(b);
        }
        graph
    }

    #[test]
    fn components_of_more_than_one_node_are_cycles() {
        // 1 → 2 → 3 → 1 and 4 ↔ 5, joined by 3 → 4 (no way back); 6 → 7 is a path.
        let g = graph(&[(1, 2), (2, 3), (3, 1), (3, 4), (4, 5), (5, 4), (6, 7)]);
        assert_eq!(cycles(&g), [vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(cycle_through(&g, &[1, 2, 3]), [1, 2, 3, 1]);
        assert_eq!(cycle_through(&g, &[4, 5]), [4, 5, 4]);
    }

    #[test]
    fn a_dag_has_none() {
        let g = graph(&[(1, 2), (1, 3), (2, 3), (3, 4)]);
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn the_shortest_way_back_is_printed() {
        // 1 → 2 → 3 → 4 → 1 and the shortcut 2 → 1.
        let g = graph(&[(1, 2), (2, 3), (3, 4), (4, 1), (2, 1)]);
        assert_eq!(cycles(&g), [vec![1, 2, 3, 4]]);
        assert_eq!(cycle_through(&g, &[1, 2, 3, 4]), [1, 2, 1]);
    }
}
