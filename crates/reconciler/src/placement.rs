//! Placement arithmetic: splitting a count by weight, and spreading a count over hosts
//! without churn.
//!
//! Hosts are indices into the planner's host list, which is sorted by host id, so "by index"
//! is "by host id".

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Splits `total` by `weights`: each part gets `total * w / sum(w)` rounded down, then the
/// remainder goes one by one to the parts with the largest fractional part (ties: the earlier
/// part). All weights 0 counts as all weights equal.
pub(crate) fn split_by_weight(total: u32, weights: &[u32]) -> Vec<u32> {
    if weights.is_empty() {
        return Vec::new();
    }
    let mut weights: Vec<u64> = weights.iter().map(|w| u64::from(*w)).collect();
    if weights.iter().all(|w| *w == 0) {
        weights.iter_mut().for_each(|w| *w = 1);
    }
    let sum: u64 = weights.iter().sum();
    let total = u64::from(total);
    let mut parts: Vec<u64> = weights.iter().map(|w| total * w / sum).collect();
    let fractions: Vec<u64> = weights.iter().map(|w| total * w % sum).collect();
    let given: u64 = parts.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Stable sort: ties keep manifest order.
    order.sort_by(|a, b| fractions[*b].cmp(&fractions[*a]));
    let remainder = usize::try_from(total - given).unwrap_or(usize::MAX);
    for i in order.into_iter().take(remainder) {
        parts[i] += 1;
    }
    // Each part is at most `total`, which came from a u32.
    parts
        .into_iter()
        .map(|p| u32::try_from(p).unwrap_or(u32::MAX))
        .collect()
}

/// One spread of a spread scaler, resolved against the hosts.
pub(crate) struct SpreadSlot {
    /// How many instances this spread gets.
    pub count: u32,
    /// Hosts that may take them, in index order.
    pub eligible: Vec<usize>,
}

/// Spreads each slot's count evenly over its eligible hosts and sums per host.
///
/// Every eligible host gets `count / n`; the `count % n` extra instances go preferably to
/// hosts whose current count is above what the even shares already give them (so that a
/// placement that is already right stays exactly as it is), then to hosts running the most
/// instances, then by host id. Keeping the extras where they are is a maximum flow problem
/// when spreads overlap; it is solved exactly, which makes planning idempotent: planning
/// against the result of a plan gives the same shares.
pub(crate) fn distribute(
    slots: &[SpreadSlot],
    current: &BTreeMap<usize, u32>,
) -> BTreeMap<usize, u32> {
    let cur = |h: usize| current.get(&h).copied().unwrap_or(0);
    let mut target: BTreeMap<usize, u32> = BTreeMap::new();
    let mut extras = Vec::with_capacity(slots.len());
    for slot in slots {
        let n = u32::try_from(slot.eligible.len()).unwrap_or(u32::MAX);
        if n == 0 {
            extras.push(0);
            continue;
        }
        let base = slot.count / n;
        extras.push(slot.count % n);
        for h in &slot.eligible {
            *target.entry(*h).or_default() += base;
        }
    }
    // Instances above the even shares: where the extras are now.
    let residual: BTreeMap<usize, u32> = current
        .iter()
        .map(|(h, c)| (*h, c.saturating_sub(target.get(h).copied().unwrap_or(0))))
        .filter(|(_, r)| *r > 0)
        .collect();
    let preference = |slot: &SpreadSlot| {
        let mut hosts = slot.eligible.clone();
        hosts.sort_by(|a, b| cur(*b).cmp(&cur(*a)).then(a.cmp(b)));
        hosts
    };

    // Keep as many extras in place as possible: source -> slot (its extras) -> host (1 per
    // slot) -> sink (the host's residual).
    let host_node: BTreeMap<usize, usize> = residual
        .keys()
        .enumerate()
        .map(|(i, h)| (*h, 2 + slots.len() + i))
        .collect();
    let mut flow = Flow::new(2 + slots.len() + host_node.len());
    let mut edges: Vec<(usize, usize, usize)> = Vec::new(); // (slot, host, edge)
    for (s, slot) in slots.iter().enumerate() {
        if extras[s] == 0 {
            continue;
        }
        flow.add_edge(SOURCE, 2 + s, u64::from(extras[s]));
        for h in preference(slot) {
            if let Some(node) = host_node.get(&h) {
                let e = flow.add_edge(2 + s, *node, 1);
                edges.push((s, h, e));
            }
        }
    }
    for (h, node) in &host_node {
        flow.add_edge(*node, SINK, u64::from(residual[h]));
    }
    flow.run();
    let mut given: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); slots.len()];
    for (s, h, e) in edges {
        if flow.flow(e) > 0 {
            given[s].insert(h);
        }
    }

    // The rest of the extras go by preference.
    for (s, slot) in slots.iter().enumerate() {
        let missing = usize::try_from(extras[s])
            .unwrap_or(usize::MAX)
            .saturating_sub(given[s].len());
        let more: Vec<usize> = preference(slot)
            .into_iter()
            .filter(|h| !given[s].contains(h))
            .take(missing)
            .collect();
        given[s].extend(more);
    }
    for hosts in given {
        for h in hosts {
            *target.entry(h).or_default() += 1;
        }
    }
    target.retain(|_, c| *c > 0);
    target
}

const SOURCE: usize = 0;
const SINK: usize = 1;

/// A small max-flow network (Edmonds–Karp). Edges are searched in the order they were
/// added, so the result is deterministic and early edges are preferred.
struct Flow {
    adjacency: Vec<Vec<usize>>,
    to: Vec<usize>,
    capacity: Vec<u64>,
}

impl Flow {
    fn new(nodes: usize) -> Self {
        Self {
            adjacency: vec![Vec::new(); nodes],
            to: Vec::new(),
            capacity: Vec::new(),
        }
    }

    /// Adds `from -> to` with `capacity`; returns the edge's index.
    fn add_edge(&mut self, from: usize, to: usize, capacity: u64) -> usize {
        let e = self.to.len();
        self.to.push(to);
        self.capacity.push(capacity);
        self.adjacency[from].push(e);
        self.to.push(from);
        self.capacity.push(0);
        self.adjacency[to].push(e + 1);
        e
    }

    /// The flow through edge `e` (the capacity of its reverse edge).
    fn flow(&self, e: usize) -> u64 {
        self.capacity[e ^ 1]
    }

    /// Pushes the maximum flow from [`SOURCE`] to [`SINK`].
    fn run(&mut self) {
        loop {
            let mut via: Vec<Option<usize>> = vec![None; self.adjacency.len()];
            let mut seen = vec![false; self.adjacency.len()];
            seen[SOURCE] = true;
            let mut queue = VecDeque::from([SOURCE]);
            while let Some(node) = queue.pop_front() {
                if node == SINK {
                    break;
                }
                for &e in &self.adjacency[node] {
                    let next = self.to[e];
                    if self.capacity[e] > 0 && !seen[next] {
                        seen[next] = true;
                        via[next] = Some(e);
                        queue.push_back(next);
                    }
                }
            }
            if !seen[SINK] {
                return;
            }
            let mut path = Vec::new();
            let mut node = SINK;
            while let Some(e) = via[node] {
                path.push(e);
                node = self.to[e ^ 1];
            }
            let push = path.iter().map(|e| self.capacity[*e]).min().unwrap_or(0);
            if push == 0 {
                return;
            }
            for e in path {
                self.capacity[e] -= push;
                self.capacity[e ^ 1] += push;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(count: u32, eligible: &[usize]) -> SpreadSlot {
        SpreadSlot {
            count,
            eligible: eligible.to_vec(),
        }
    }

    fn map(pairs: &[(usize, u32)]) -> BTreeMap<usize, u32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn weights_split_with_largest_remainder() {
        assert_eq!(split_by_weight(6, &[1, 2]), [2, 4]);
        assert_eq!(split_by_weight(5, &[1, 1, 1]), [2, 2, 1]);
        assert_eq!(split_by_weight(5, &[30, 70]), [2, 3]);
        // Largest fractional part first, not manifest order: 0.6, 0.9, 1.5.
        assert_eq!(split_by_weight(3, &[20, 30, 50]), [1, 1, 1]);
        assert_eq!(split_by_weight(1, &[20, 30, 50]), [0, 0, 1]);
        assert_eq!(split_by_weight(2, &[0, 0]), [1, 1]);
        assert_eq!(split_by_weight(0, &[100]), [0]);
        assert_eq!(
            split_by_weight(u32::MAX, &[u32::MAX, 1])
                .iter()
                .map(|p| u64::from(*p))
                .sum::<u64>(),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn even_spread_prefers_running_hosts() {
        let t = distribute(&[slot(2, &[0, 1, 2])], &map(&[(2, 1), (1, 1)]));
        assert_eq!(t, map(&[(1, 1), (2, 1)]));
        let t = distribute(&[slot(5, &[0, 1])], &BTreeMap::new());
        assert_eq!(t, map(&[(0, 3), (1, 2)]));
        let t = distribute(&[slot(5, &[0, 1])], &map(&[(1, 9)]));
        assert_eq!(t, map(&[(0, 2), (1, 3)]));
    }

    #[test]
    fn overlapping_spreads_are_a_fixed_point() {
        // Spread 0 may use hosts 0 and 1 (one instance), spread 1 only host 1 (five): the
        // greedy "most instances first" would move spread 0's instance to host 1 on the
        // second round.
        let slots = [slot(1, &[0, 1]), slot(5, &[1])];
        let first = distribute(&slots, &BTreeMap::new());
        assert_eq!(first, map(&[(0, 1), (1, 5)]));
        assert_eq!(distribute(&slots, &first), first);

        let slots = [slot(1, &[0, 1]), slot(1, &[1, 2]), slot(1, &[1, 3])];
        let first = distribute(&slots, &BTreeMap::new());
        assert_eq!(distribute(&slots, &first), first);
        let first = distribute(&slots, &map(&[(3, 1), (2, 1)]));
        assert_eq!(distribute(&slots, &first), first);
    }
}
