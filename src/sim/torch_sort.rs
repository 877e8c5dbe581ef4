//! The permutation `torch.sort(p, descending=True)` gives on the CPU (torch
//! 2.3.1): libstdc++'s `std::sort` (introsort: median-of-three pivot,
//! unguarded partition, depth limit 2·⌊log2 n⌋ with a heapsort fallback, final
//! insertion sort above 16 elements) on (value, index) pairs compared by value
//! only, `a > b`. Not stable: the order inside a group of equal values is an
//! artefact of the algorithm, and the reference's non-iid guardrail takes a
//! prefix of it (`shared/reference/README.md`, "Ties"). Written from the
//! published algorithm so that the plausible set of the reference code can be
//! reproduced where its cut splits a tie group.

/// `NonIidGuardrail.m_alpha` on values already in torch's sort order: the
/// number of leading positions with `p_j ≥ α·c_j` in f32, `c` the cumulative
/// sum accumulated in f64 and rounded to f32 per position (torch CPU).
pub fn prefix(sorted: impl Iterator<Item = f32>, alpha: f64) -> usize {
    let a = alpha as f32;
    let mut c = 0.0f64;
    let mut m = 0;
    for p in sorted {
        c += p as f64;
        if p >= a * (c as f32) {
            m += 1;
        } else {
            break;
        }
    }
    m
}

/// The reference's `M_α` for posterior probabilities `p` (f32, hypothesis
/// order): the hypotheses in the first `m` positions of torch's sort.
pub fn m_alpha(p: &[f32], alpha: f64) -> Vec<u32> {
    // full sort: m is not known in advance
    let mut v: Vec<(f32, u32)> = p.iter().enumerate().map(|(i, &x)| (x, i as u32)).collect();
    std_sort_desc(&mut v);
    let m = prefix(v.iter().map(|x| x.0), alpha);
    v[..m].iter().map(|x| x.1).collect()
}

const THRESHOLD: usize = 16;

#[inline]
fn gt(a: &(f32, u32), b: &(f32, u32)) -> bool {
    a.0 > b.0
}

/// Sorts `v` exactly as `std::sort(v.begin(), v.end(), comp)` with
/// `comp(a, b) = a.0 > b.0` does in libstdc++.
pub fn std_sort_desc(v: &mut [(f32, u32)]) {
    let n = v.len();
    std_sort_desc_prefix(v, n);
}

/// Like [`std_sort_desc`], but only the first `need` positions are
/// guaranteed to hold what the full sort puts there. Sub-ranges that start at
/// or after `need` are left unsorted: after an unguarded partition every
/// element right of the cut is ≤ every element left of it, so neither their
/// sorting nor the final insertion pass ever moves anything into the prefix.
pub fn std_sort_desc_prefix(v: &mut [(f32, u32)], need: usize) {
    let n = v.len();
    if n < 2 || need == 0 {
        return;
    }
    let depth = 2 * (usize::BITS - 1 - n.leading_zeros()) as usize;
    introsort_loop(v, 0, n, depth, need);
    let end = if need >= n {
        n
    } else {
        need.max(THRESHOLD + 1).min(n)
    };
    final_insertion_sort(v, 0, end);
}

fn introsort_loop(
    v: &mut [(f32, u32)],
    first: usize,
    mut last: usize,
    mut depth: usize,
    need: usize,
) {
    while last - first > THRESHOLD {
        if depth == 0 {
            partial_sort(v, first, last);
            return;
        }
        depth -= 1;
        let cut = unguarded_partition_pivot(v, first, last);
        if cut < need {
            introsort_loop(v, cut, last, depth, need);
        }
        last = cut;
    }
}

fn unguarded_partition_pivot(v: &mut [(f32, u32)], first: usize, last: usize) -> usize {
    let mid = first + (last - first) / 2;
    move_median_to_first(v, first, first + 1, mid, last - 1);
    unguarded_partition(v, first + 1, last, first)
}

fn move_median_to_first(v: &mut [(f32, u32)], result: usize, a: usize, b: usize, c: usize) {
    if gt(&v[a], &v[b]) {
        if gt(&v[b], &v[c]) {
            v.swap(result, b);
        } else if gt(&v[a], &v[c]) {
            v.swap(result, c);
        } else {
            v.swap(result, a);
        }
    } else if gt(&v[a], &v[c]) {
        v.swap(result, a);
    } else if gt(&v[b], &v[c]) {
        v.swap(result, c);
    } else {
        v.swap(result, b);
    }
}

fn unguarded_partition(
    v: &mut [(f32, u32)],
    mut first: usize,
    mut last: usize,
    pivot: usize,
) -> usize {
    loop {
        while gt(&v[first], &v[pivot]) {
            first += 1;
        }
        last -= 1;
        while gt(&v[pivot], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn final_insertion_sort(v: &mut [(f32, u32)], first: usize, last: usize) {
    if last - first > THRESHOLD {
        insertion_sort(v, first, first + THRESHOLD);
        for i in first + THRESHOLD..last {
            unguarded_linear_insert(v, i);
        }
    } else {
        insertion_sort(v, first, last);
    }
}

fn insertion_sort(v: &mut [(f32, u32)], first: usize, last: usize) {
    if first == last {
        return;
    }
    for i in first + 1..last {
        if gt(&v[i], &v[first]) {
            let val = v[i];
            v.copy_within(first..i, first + 1);
            v[first] = val;
        } else {
            unguarded_linear_insert(v, i);
        }
    }
}

fn unguarded_linear_insert(v: &mut [(f32, u32)], mut last: usize) {
    let val = v[last];
    let mut next = last - 1;
    while gt(&val, &v[next]) {
        v[last] = v[next];
        last = next;
        next -= 1;
    }
    v[last] = val;
}

// Heapsort fallback (`std::__partial_sort(first, last, last)` =
// `__heap_select` + `__sort_heap`), as in libstdc++'s stl_heap.h.

fn partial_sort(v: &mut [(f32, u32)], first: usize, last: usize) {
    // __heap_select(first, last, last): make_heap only (no elements beyond)
    make_heap(v, first, last);
    // __sort_heap
    let mut l = last;
    while l - first > 1 {
        l -= 1;
        pop_heap(v, first, l, l);
    }
}

fn make_heap(v: &mut [(f32, u32)], first: usize, last: usize) {
    let len = last - first;
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[first + parent];
        adjust_heap(v, first, parent, len, value);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

fn pop_heap(v: &mut [(f32, u32)], first: usize, last: usize, result: usize) {
    let value = v[result];
    v[result] = v[first];
    adjust_heap(v, first, 0, last - first, value);
}

fn adjust_heap(v: &mut [(f32, u32)], first: usize, mut hole: usize, len: usize, value: (f32, u32)) {
    let top = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if gt(&v[first + second], &v[first + second - 1]) {
            second -= 1;
        }
        v[first + hole] = v[first + second];
        hole = second;
    }
    if len & 1 == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        v[first + hole] = v[first + second - 1];
        hole = second - 1;
    }
    // __push_heap
    let mut parent = if hole > 0 { (hole - 1) / 2 } else { 0 };
    while hole > top && gt(&v[first + parent], &value) {
        v[first + hole] = v[first + parent];
        hole = parent;
        parent = if hole > 0 { (hole - 1) / 2 } else { 0 };
    }
    v[first + hole] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_equal_1024_starts_as_torch_does() {
        // shared/reference/README.md: t.sort(t.ones(1024), descending=True)
        // yields the index order 688, 673, 674, …
        let mut v: Vec<(f32, u32)> = (0..1024).map(|i| (1.0, i)).collect();
        std_sort_desc(&mut v);
        assert_eq!(
            &v[..3].iter().map(|p| p.1).collect::<Vec<_>>(),
            &[688, 673, 674]
        );
    }

    #[test]
    fn it_sorts() {
        let mut s = 12345u64;
        for n in [0usize, 1, 2, 5, 16, 17, 100, 1000, 4096] {
            let mut v: Vec<(f32, u32)> = (0..n as u32)
                .map(|i| {
                    s = super::super::mix(s);
                    ((s % 50) as f32, i)
                })
                .collect();
            let mut want: Vec<f32> = v.iter().map(|p| p.0).collect();
            want.sort_by(|a, b| b.total_cmp(a));
            std_sort_desc(&mut v);
            assert_eq!(v.iter().map(|p| p.0).collect::<Vec<_>>(), want);
            let mut idx: Vec<u32> = v.iter().map(|p| p.1).collect();
            idx.sort();
            assert_eq!(idx, (0..n as u32).collect::<Vec<_>>());
        }
        // the prefix variant agrees with the full sort on the prefix
        for need in [1usize, 5, 17, 40, 300] {
            let mut full: Vec<(f32, u32)> = (0..1000u32)
                .map(|i| {
                    s = super::super::mix(s);
                    ((s % 7) as f32, i)
                })
                .collect();
            let mut part = full.clone();
            std_sort_desc(&mut full);
            std_sort_desc_prefix(&mut part, need);
            assert_eq!(&full[..need], &part[..need]);
        }
        // and the heapsort fallback sorts too
        let mut v: Vec<(f32, u32)> = (0..300).map(|i| (((i * 37) % 101) as f32, i)).collect();
        partial_sort(&mut v, 0, 300);
        assert!(v.windows(2).all(|w| w[0].0 >= w[1].0));
    }
}
