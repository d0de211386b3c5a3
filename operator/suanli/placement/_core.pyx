# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled placement core: the production implementation of ``suanli.placement``.

Why Cython: a scheduling cycle scores every node for every replica of every pending gang; the
per-node work (candidate device choices, expected fragmentation over the workload mix) runs here
in C over a flat array of node records. The algorithm is exactly the one documented and written
plainly in ``suanli.placement.reference``; the two must make identical decisions (tested).

Speed-up beyond a straight port: nodes in the same state (same class, free CPU, memory, pod slots
and the same multiset of free device milli per interconnect group) score the same for a request,
so one decision scores each distinct state once (a per-decision memo keyed by the node's
state signature, which is maintained incrementally whenever a node changes).
"""

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memset
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM

from suanli.placement.mix import MixTable, RecentMix
from suanli.placement.model import (
    BALANCE_WEIGHT,
    WHOLE,
    ClassCapacity,
    DeviceClass,
    Failure,
    FailureReason,
    Gang,
    GangOption,
    Placement,
    Policy,
    ReplicaAssignment,
    TopologyLevel,
    TopologyMode,
    WorkloadShape,
)
from suanli.placement.validation import (
    check_node_args,
    failure_insufficient,
    failure_topology,
    illegal_options_failure,
    legal_options,
)

# Enum members looked up once (module attribute lookups cost on every decision).
cdef object TOPO_NONE = TopologyMode.NONE
cdef object TOPO_REQUIRE = TopologyMode.REQUIRE
cdef object TOPO_PREFER = TopologyMode.PREFER
cdef object LEVEL_RACK = TopologyLevel.RACK

cdef enum:
    MAXD = 16
    CWHOLE = 1000
    P_BEST_FIT = 0
    P_SPREAD = 1
    P_FRAG = 2

cdef int64_t PPM = 1000000


cdef struct Choice:
    int64_t key[3]          # for fragmentation_aware, key[0] excludes the balance penalty
    int64_t imbalance       # |free CPU share - free device share| after, in ppm
    int32_t dev[MAXD]
    int32_t fits


cdef enum:
    CACHE_WAYS = 4


cdef inline void effective_key(const int64_t* key, int64_t imbalance, int64_t balance,
                               int64_t* out) noexcept nogil:
    """The key nodes are compared by: balance enters here, so cached choices stay valid as the
    utilisation moves (it is the same for every candidate of one node, so never picks one)."""
    out[0] = key[0] + balance * imbalance // PPM
    out[1] = key[1]
    out[2] = key[2]


cdef struct NodeRec:
    # hot: read for every node on every decision (first cache line)
    int64_t cpu_free, mem_free, pods_free
    int32_t dclass, alive, sched, rack, superid
    uint32_t version        # bumped on every state change; validates the score cache
    # cold
    int64_t cpu_cap, mem_cap, pods_cap
    int32_t ndev, group
    int32_t class_pos       # index in its device class's slot list
    uint64_t signature
    int64_t frag_cache      # expected fragmentation of the current state, -1 when stale
    int32_t dev[MAXD]


cdef struct CachedKey:
    int64_t key[3]
    int64_t imbalance
    int32_t fits


# A node's best choice for its last few request shapes, kept apart from NodeRec so the
# per-decision scan touches as little memory as possible.
cdef struct NodeCache:
    uint64_t shape[CACHE_WAYS]       # request-shape hash (with the config epoch)
    uint32_t version[CACHE_WAYS]
    int32_t next
    CachedKey entry[CACHE_WAYS]


cdef struct MixC:
    int64_t* const_w
    int64_t* rows      # 5 values per row: cpu, mem, count, milli, weight
    int32_t* start
    int32_t* end
    int32_t classes
    int64_t* waste     # CWHOLE + 1 values per waste curve (see suanli.placement.mix)
    int64_t* level     # the CPU level of each curve
    int32_t* curve_start
    int32_t* curve_end
    int64_t dead       # weight of one free milli on a node no shape fits




cdef inline int policy_code(object policy):
    if policy == Policy.BEST_FIT:
        return P_BEST_FIT
    if policy == Policy.SPREAD:
        return P_SPREAD
    return P_FRAG


cdef inline bint key_less(const int64_t* a, const int64_t* b) noexcept nogil:
    if a[0] != b[0]:
        return a[0] < b[0]
    if a[1] != b[1]:
        return a[1] < b[1]
    return a[2] < b[2]


cdef int enumerate_candidates(const int32_t* f, int n, int group, int count, int milli,
                              int32_t* out) noexcept nogil:
    """Fill ``out`` with candidates of ``count`` indices each; return how many (see reference)."""
    cdef int i, j, start, k, found = 0, whole, needed, full
    cdef bint dup, all_whole
    if count == 0:
        return 1
    if count > n:
        return 0
    if milli < CWHOLE:
        for i in range(n):
            if f[i] < milli:
                continue
            start = i - i % group
            dup = False
            for j in range(start, i):
                if f[j] == f[i]:
                    dup = True
                    break
            if dup:
                continue
            out[found * count] = i
            found += 1
        return found
    if count <= group:
        start = 0
        while start < n:
            whole = 0
            for i in range(start, start + group):
                if f[i] == CWHOLE:
                    whole += 1
            if whole >= count:
                k = 0
                for i in range(start, start + group):
                    if f[i] == CWHOLE and k < count:
                        out[found * count + k] = i
                        k += 1
                found += 1
            start += group
        return found
    needed = count // group
    full = 0
    k = 0
    start = 0
    while start < n and full < needed:
        all_whole = True
        for i in range(start, start + group):
            if f[i] != CWHOLE:
                all_whole = False
                break
        if all_whole:
            for i in range(start, start + group):
                out[k] = i
                k += 1
            full += 1
        start += group
    return 1 if full == needed else 0


cdef int64_t usable_milli(const int32_t* f, int n, int group, int count, int milli) noexcept nogil:
    cdef int i, start, whole, full = 0
    cdef int64_t usable = 0
    cdef bint all_whole
    if count > n:
        return 0
    if milli < CWHOLE:
        for i in range(n):
            if f[i] >= milli:
                usable += f[i]
        return usable
    start = 0
    if count <= group:
        while start < n:
            whole = 0
            for i in range(start, start + group):
                if f[i] == CWHOLE:
                    whole += 1
            if whole >= count:
                usable += whole
            start += group
        return usable * CWHOLE
    while start < n:
        all_whole = True
        for i in range(start, start + group):
            if f[i] != CWHOLE:
                all_whole = False
                break
        if all_whole:
            full += 1
        start += group
    return <int64_t>full * group * CWHOLE if full >= count // group else 0


cdef int64_t expected_fragmentation(const MixC* mix, int dclass, int64_t cpu, int64_t mem,
                                    int64_t pods, const int32_t* f, int n,
                                    int group) noexcept nogil:
    cdef int64_t total = 0, frag, usable = 0, last_count = -1, last_milli = -1
    cdef int i, r, curve
    cdef bint shares
    cdef const int64_t* row
    for i in range(n):
        total += f[i]
    if total == 0 or dclass < 0 or dclass >= mix.classes:
        return 0
    frag = mix.const_w[dclass] * total
    shares = mix.curve_end[dclass] > mix.curve_start[dclass]
    if shares:
        curve = -1
        if pods >= 1:
            for r in range(mix.curve_start[dclass], mix.curve_end[dclass]):
                if mix.level[r] > cpu:
                    break
                curve = r
        if curve < 0:
            frag += mix.dead * total
        else:
            for i in range(n):
                frag += mix.waste[curve * (CWHOLE + 1) + f[i]]
    for r in range(mix.start[dclass], mix.end[dclass]):
        row = mix.rows + 5 * r
        if pods < 1 or cpu < row[0] or mem < row[1]:
            frag += row[4] * total
        elif shares and row[3] < CWHOLE:
            continue    # the waste curve accounts for shares
        else:
            if row[2] != last_count or row[3] != last_milli:
                usable = usable_milli(f, n, group, <int>row[2], <int>row[3])
                last_count = row[2]
                last_milli = row[3]
            frag += row[4] * (total - usable if usable else total)
    return frag


cdef inline int64_t fit_ppm(const NodeRec* nd, int64_t dev_free, int64_t cpu_free,
                            int64_t mem_free) noexcept nogil:
    cdef int64_t fit = 0
    if nd.ndev:
        fit = floordiv(dev_free * PPM, <int64_t>nd.ndev * CWHOLE)
    return fit + floordiv(cpu_free * PPM, nd.cpu_cap) + floordiv(mem_free * PPM, nd.mem_cap)


cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    """Python's floor division (C truncates toward zero; free may be negative)."""
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef int64_t leftover(const NodeRec* nd, const int32_t* devs, int count, int milli,
                      const int32_t* after) noexcept nogil:
    cdef int64_t total = 0
    cdef int i, j, start, g = nd.group
    cdef bint seen
    if milli < CWHOLE:
        for i in range(count):
            total += after[devs[i]]
        return total
    for i in range(count):
        start = devs[i] - devs[i] % g
        seen = False
        for j in range(i):
            if devs[j] - devs[j] % g == start:
                seen = True
                break
        if seen:
            continue
        for j in range(start, start + g):
            if after[j] == CWHOLE:
                total += CWHOLE
    return total


cdef inline int64_t abs64(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef void score_node(NodeRec* nd, int64_t cpu, int64_t mem, int count, int milli,
                     int policy, const MixC* mix, Choice* out) noexcept nogil:
    """The node's best candidate into ``out`` (``out.fits`` 0 when nothing fits)."""
    cdef int32_t cands[MAXD * MAXD]
    cdef int32_t after[MAXD]
    cdef int ncand, c, i, n = nd.ndev
    cdef int64_t frag_before = 0, dev_sum, cpu_after, mem_after, fit, left
    cdef int64_t key[3]
    out.fits = 0
    out.imbalance = 0
    if nd.pods_free < 1 or nd.cpu_free < cpu or nd.mem_free < mem:
        return
    ncand = enumerate_candidates(nd.dev, n, nd.group, count, milli, cands)
    if ncand == 0:
        return
    if policy == P_FRAG:
        if nd.frag_cache < 0:
            nd.frag_cache = expected_fragmentation(mix, nd.dclass, nd.cpu_free, nd.mem_free,
                                                   nd.pods_free, nd.dev, n, nd.group)
        frag_before = nd.frag_cache
    cpu_after = nd.cpu_free - cpu
    mem_after = nd.mem_free - mem
    if policy == P_FRAG and n:
        dev_sum = -<int64_t>count * milli
        for i in range(n):
            dev_sum += nd.dev[i]
        out.imbalance = abs64(floordiv(cpu_after * PPM, nd.cpu_cap)
                              - floordiv(dev_sum * PPM, <int64_t>n * CWHOLE))
    for c in range(ncand):
        memcpy(after, nd.dev, n * sizeof(int32_t))
        for i in range(count):
            after[cands[c * count + i]] -= milli
        dev_sum = 0
        for i in range(n):
            dev_sum += after[i]
        fit = fit_ppm(nd, dev_sum, cpu_after, mem_after)
        left = leftover(nd, cands + c * count, count, milli, after)
        if policy == P_BEST_FIT:
            key[0] = fit
            key[1] = left
            key[2] = 0
        elif policy == P_SPREAD:
            key[0] = -fit
            key[1] = -left
            key[2] = 0
        else:
            key[0] = expected_fragmentation(mix, nd.dclass, cpu_after, mem_after,
                                            nd.pods_free - 1, after, n, nd.group) - frag_before
            key[1] = fit
            key[2] = left
        if not out.fits or key_less(key, out.key):
            out.fits = 1
            out.key[0] = key[0]
            out.key[1] = key[1]
            out.key[2] = key[2]
            for i in range(count):
                out.dev[i] = cands[c * count + i]


cdef uint64_t state_signature(const NodeRec* nd) noexcept nogil:
    """Hash of everything a score depends on; equal states get equal signatures.

    Devices enter as a sorted multiset per group, and groups as a multiset too (sum of
    per-group hashes), since scores do not depend on which index holds which free value.
    """
    cdef uint64_t h = 1469598103934665603ULL
    cdef uint64_t gh, groups = 0
    cdef int32_t sorted_dev[MAXD]
    cdef int i, j, start, g = nd.group
    cdef int32_t t
    h = mixin(h, <uint64_t>(nd.dclass + 1))
    h = mixin(h, <uint64_t>nd.cpu_free)
    h = mixin(h, <uint64_t>nd.mem_free)
    h = mixin(h, <uint64_t>nd.pods_free)
    h = mixin(h, <uint64_t>nd.cpu_cap)
    h = mixin(h, <uint64_t>nd.mem_cap)
    h = mixin(h, <uint64_t>nd.ndev)
    h = mixin(h, <uint64_t>g)
    memcpy(sorted_dev, nd.dev, nd.ndev * sizeof(int32_t))
    start = 0
    while start < nd.ndev:
        for i in range(start + 1, start + g):
            t = sorted_dev[i]
            j = i - 1
            while j >= start and sorted_dev[j] > t:
                sorted_dev[j + 1] = sorted_dev[j]
                j -= 1
            sorted_dev[j + 1] = t
        gh = 88172645463325252ULL
        for i in range(start, start + g):
            gh = mixin(gh, <uint64_t>sorted_dev[i])
        groups += gh * 0x9E3779B97F4A7C15ULL
        start += g
    return mixin(h, groups)


cdef inline uint64_t mixin(uint64_t h, uint64_t v) noexcept nogil:
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2)
    h *= 0xBF58476D1CE4E5B9ULL
    return h ^ (h >> 31)


# --- per-shape best-node index ---------------------------------------------------------------
# For a request shape that recurs (same class, policy, device count and milli, CPU and memory),
# the nodes that fit are kept in a treap ordered by (key[0], imbalance, slot), each tree node
# also holding the slot with the smallest (key[1], key[2], slot) in its subtree. A node's entry
# depends only on its state signature, so a change marks the node dirty in every live index and
# the next query re-scores it only if its signature moved. The decision needs
#   min over nodes of (key[0] + balance * imbalance // PPM, key[1], key[2], slot)
# with ``balance`` a cluster-wide weight that moves with utilisation; per distinct key[0] the
# winner is among the entries whose imbalance gives the group's smallest penalty (a range of
# imbalance values: one range-minimum query), and groups whose key[0] already exceeds the best
# effective key are skipped. Cost: O(groups visited x log nodes) instead of O(nodes).

cdef enum:
    MAX_INDEXES = 8
    MAX_GROUPS = 48         # distinct key[0] values one query may visit before it gives up
    SEEN_SLOTS = 256        # how often recent shapes were asked for, direct-mapped by hash
    ADMIT_AFTER = 32        # default index_after: build an index for shapes asked this often


cdef struct ShapeIndex:
    uint64_t shape
    int32_t used
    uint64_t last_used
    int32_t class_id
    int32_t policy
    int32_t count
    int32_t milli
    int64_t cpu
    int64_t mem
    int32_t root
    int32_t ndirty
    Py_ssize_t cap
    int32_t* left
    int32_t* right
    int32_t* agg
    int64_t* a
    int64_t* m
    int64_t* k1
    int64_t* k2
    uint64_t* sig
    unsigned char* present
    unsigned char* dirty
    int32_t* dirty_list


cdef inline uint32_t treap_prio(int32_t s) noexcept nogil:
    return <uint32_t>(mixin(0x243F6A8885A308D3ULL, <uint64_t>s) >> 32)


cdef inline bint agg_less(const ShapeIndex* ix, int32_t s, int32_t t) noexcept nogil:
    if ix.k1[s] != ix.k1[t]:
        return ix.k1[s] < ix.k1[t]
    if ix.k2[s] != ix.k2[t]:
        return ix.k2[s] < ix.k2[t]
    return s < t


cdef inline void treap_pull(ShapeIndex* ix, int32_t t) noexcept nogil:
    cdef int32_t best = t, c
    c = ix.left[t]
    if c >= 0 and agg_less(ix, ix.agg[c], best):
        best = ix.agg[c]
    c = ix.right[t]
    if c >= 0 and agg_less(ix, ix.agg[c], best):
        best = ix.agg[c]
    ix.agg[t] = best


cdef inline bint treap_before(const ShapeIndex* ix, int32_t t, int64_t a, int64_t m,
                              int64_t s) noexcept nogil:
    """Entry ``t`` orders before the bound (a, m, s)."""
    if ix.a[t] != a:
        return ix.a[t] < a
    if ix.m[t] != m:
        return ix.m[t] < m
    return t < s


cdef void treap_split(ShapeIndex* ix, int32_t t, int64_t a, int64_t m, int64_t s,
                      int32_t* lo, int32_t* hi) noexcept nogil:
    """Entries before (a, m, s) into ``lo``, the rest into ``hi``."""
    if t < 0:
        lo[0] = -1
        hi[0] = -1
        return
    if treap_before(ix, t, a, m, s):
        treap_split(ix, ix.right[t], a, m, s, &ix.right[t], hi)
        treap_pull(ix, t)
        lo[0] = t
    else:
        treap_split(ix, ix.left[t], a, m, s, lo, &ix.left[t])
        treap_pull(ix, t)
        hi[0] = t


cdef int32_t treap_merge(ShapeIndex* ix, int32_t l, int32_t r) noexcept nogil:
    if l < 0:
        return r
    if r < 0:
        return l
    if treap_prio(l) > treap_prio(r):
        ix.right[l] = treap_merge(ix, ix.right[l], r)
        treap_pull(ix, l)
        return l
    ix.left[r] = treap_merge(ix, l, ix.left[r])
    treap_pull(ix, r)
    return r


cdef void treap_insert(ShapeIndex* ix, int32_t s) noexcept nogil:
    cdef int32_t lo, hi
    treap_split(ix, ix.root, ix.a[s], ix.m[s], s, &lo, &hi)
    ix.left[s] = -1
    ix.right[s] = -1
    ix.agg[s] = s
    ix.root = treap_merge(ix, treap_merge(ix, lo, s), hi)


cdef void treap_erase(ShapeIndex* ix, int32_t s) noexcept nogil:
    cdef int32_t lo, hi, mid, rest
    treap_split(ix, ix.root, ix.a[s], ix.m[s], s, &lo, &hi)
    treap_split(ix, hi, ix.a[s], ix.m[s], <int64_t>s + 1, &mid, &rest)
    ix.root = treap_merge(ix, lo, rest)


cdef int32_t treap_range_min(ShapeIndex* ix, int64_t a, int64_t m_lo, int64_t m_hi) noexcept nogil:
    """Slot with the smallest (key[1], key[2], slot) among entries with key[0] == a and
    m_lo <= imbalance < m_hi (-1 if none); the tree is put back as it was."""
    cdef int32_t lo, hi, mid, rest, found = -1
    treap_split(ix, ix.root, a, m_lo, -1, &lo, &hi)
    treap_split(ix, hi, a, m_hi, -1, &mid, &rest)
    if mid >= 0:
        found = ix.agg[mid]
    ix.root = treap_merge(ix, lo, treap_merge(ix, mid, rest))
    return found


cdef int32_t treap_first_above(const ShapeIndex* ix, int64_t a, bint any_a) noexcept nogil:
    """The first entry (smallest (key[0], imbalance, slot)) with key[0] > a (any if any_a)."""
    cdef int32_t t = ix.root, found = -1
    while t >= 0:
        if any_a or ix.a[t] > a:
            found = t
            t = ix.left[t]
        else:
            t = ix.right[t]
    return found


cdef Py_ssize_t index_query(ShapeIndex* ix, int64_t balance, int64_t* best_key) noexcept nogil:
    """The winning slot (-1 if nothing fits) and its effective key, exactly as the scan; -2
    when more than MAX_GROUPS distinct key[0] values had to be visited (the caller scans)."""
    cdef Py_ssize_t best_slot = -1
    cdef int32_t g, w
    cdef int64_t a = 0, m0, f0, lim
    cdef int64_t key[3]
    cdef bint first = True
    cdef int groups = 0
    while True:
        g = treap_first_above(ix, a, first)
        first = False
        if g < 0:
            break
        a = ix.a[g]
        if best_slot >= 0 and a > best_key[0]:
            break
        groups += 1
        if groups > MAX_GROUPS:
            return -2
        m0 = ix.m[g]
        if balance > 0:
            f0 = balance * m0 // PPM
            lim = ((f0 + 1) * PPM + balance - 1) // balance
        else:
            f0 = 0
            lim = 0x7FFFFFFFFFFFFFFF
        w = treap_range_min(ix, a, m0, lim)
        key[0] = a + f0
        key[1] = ix.k1[w]
        key[2] = ix.k2[w]
        if (best_slot < 0 or key_less(key, best_key)
                or (w < best_slot and not key_less(best_key, key))):
            best_slot = w
            best_key[0] = key[0]
            best_key[1] = key[1]
            best_key[2] = key[2]
    return best_slot


cdef struct SortItem:
    int64_t a
    int64_t m
    int32_t slot


cdef int sort_item_cmp(const void* x, const void* y) noexcept nogil:
    cdef const SortItem* p = <const SortItem*>x
    cdef const SortItem* q = <const SortItem*>y
    if p.a != q.a:
        return -1 if p.a < q.a else 1
    if p.m != q.m:
        return -1 if p.m < q.m else 1
    return -1 if p.slot < q.slot else (1 if p.slot > q.slot else 0)


cdef void treap_fix(ShapeIndex* ix, int32_t t) noexcept nogil:
    if t < 0:
        return
    treap_fix(ix, ix.left[t])
    treap_fix(ix, ix.right[t])
    treap_pull(ix, t)


cdef bint treap_bulk(ShapeIndex* ix, const int32_t* slots, Py_ssize_t n) noexcept nogil:
    """Build the (empty) tree from ``n`` entries at once: sort, then the Cartesian tree by
    priority with a stack, O(n log n) in C instead of n split/merge inserts. False: no memory."""
    cdef SortItem* items = <SortItem*>malloc((n + 1) * sizeof(SortItem))
    cdef int32_t* stack = <int32_t*>malloc((n + 1) * sizeof(int32_t))
    cdef Py_ssize_t i, top = 0
    cdef int32_t s, last
    if items == NULL or stack == NULL:
        free(items)
        free(stack)
        return False
    for i in range(n):
        items[i].a = ix.a[slots[i]]
        items[i].m = ix.m[slots[i]]
        items[i].slot = slots[i]
    qsort(items, n, sizeof(SortItem), sort_item_cmp)
    for i in range(n):
        s = items[i].slot
        ix.left[s] = -1
        ix.right[s] = -1
        last = -1
        while top > 0 and treap_prio(stack[top - 1]) < treap_prio(s):
            top -= 1
            last = stack[top]
        ix.left[s] = last
        if top > 0:
            ix.right[stack[top - 1]] = s
        stack[top] = s
        top += 1
    ix.root = stack[0] if top > 0 else -1
    treap_fix(ix, ix.root)
    free(items)
    free(stack)
    return True


cdef void index_free(ShapeIndex* ix) noexcept nogil:
    free(ix.left)
    free(ix.right)
    free(ix.agg)
    free(ix.a)
    free(ix.m)
    free(ix.k1)
    free(ix.k2)
    free(ix.sig)
    free(ix.present)
    free(ix.dirty)
    free(ix.dirty_list)
    memset(ix, 0, sizeof(ShapeIndex))


cdef inline void index_touch(ShapeIndex* ix, Py_ssize_t slot) noexcept nogil:
    if ix.used and slot < ix.cap and not ix.dirty[slot]:
        ix.dirty[slot] = 1
        ix.dirty_list[ix.ndirty] = <int32_t>slot
        ix.ndirty += 1


cdef class ClusterState:
    """A long-lived cluster model, updated incrementally, that places gangs (compiled)."""

    cdef NodeRec* _n
    cdef NodeCache* _cache
    cdef int32_t** _class_slots
    cdef int32_t* _class_count
    cdef int32_t* _class_cap
    cdef Py_ssize_t _class_lists
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _len
    cdef MixC _mixc
    cdef int32_t* _class_policy_c
    cdef int _policy_c
    # per-decision memo, keyed by open addressing on the state signature
    cdef uint64_t* _memo_sig
    cdef uint32_t* _memo_gen
    cdef Choice* _memo_choice
    cdef Py_ssize_t _memo_cap
    cdef uint32_t _gen
    cdef public bint use_memo
    cdef public int index_after
    cdef int64_t _dev_total
    cdef int64_t _dev_free
    cdef uint64_t _epoch    # bumped when the mix or a policy changes: voids cached scores
    cdef ShapeIndex _ix[MAX_INDEXES]
    cdef uint64_t _seen[SEEN_SLOTS]
    cdef uint32_t _seen_count[SEEN_SLOTS]
    cdef uint64_t _ix_clock

    cdef list _classes
    cdef dict _class_index
    cdef object _policy
    cdef list _class_policy
    cdef list _free_slots
    cdef dict _slot_of
    cdef list _names
    cdef list _labels
    cdef list _racks
    cdef list _supers
    cdef dict _pods
    cdef dict _pods_on
    cdef dict _gangs
    cdef object _recent
    cdef object _mix
    cdef dict _domain_ids

    def __cinit__(self):
        self._cap = 0
        self._len = 0
        self._n = NULL
        self._cache = NULL
        self._class_slots = NULL
        self._class_count = NULL
        self._class_cap = NULL
        self._class_lists = 0
        self._class_policy_c = NULL
        memset(&self._mixc, 0, sizeof(MixC))
        self._memo_cap = 0
        self._memo_sig = NULL
        self._memo_gen = NULL
        self._memo_choice = NULL
        self._gen = 0
        self._dev_total = 0
        self._dev_free = 0
        memset(self._ix, 0, sizeof(self._ix))
        memset(self._seen, 0, sizeof(self._seen))
        memset(self._seen_count, 0, sizeof(self._seen_count))
        self._ix_clock = 0

    def __dealloc__(self):
        cdef int w
        for w in range(MAX_INDEXES):
            index_free(&self._ix[w])
        free(self._n)
        free(self._cache)
        cdef Py_ssize_t k
        for k in range(self._class_lists):
            free(self._class_slots[k])
        free(self._class_slots)
        free(self._class_count)
        free(self._class_cap)
        free(self._class_policy_c)
        self._free_mix()
        free(self._memo_sig)
        free(self._memo_gen)
        free(self._memo_choice)

    def __init__(self, device_classes=(), policy=Policy.FRAGMENTATION_AWARE,
                 class_policies=None, track_recent_mix=True):
        self._classes = []
        self._class_index = {}
        self._policy = Policy(policy)
        self._policy_c = policy_code(self._policy)
        self._class_policy = []
        self._free_slots = []
        self._slot_of = {}
        self._names = []
        self._labels = []
        self._racks = []
        self._supers = []
        self._pods = {}
        self._pods_on = {}
        self._gangs = {}
        self._recent = RecentMix() if track_recent_mix else None
        self._mix = MixTable.empty(0)
        self._domain_ids = {"": -1}
        self.use_memo = True
        self.index_after = ADMIT_AFTER
        for device_class in device_classes:
            self.register_device_class(device_class)
        for name, class_policy in (class_policies or {}).items():
            self.set_policy(class_policy, name)

    # --- configuration ---------------------------------------------------------------------
    def register_device_class(self, device_class):
        if not isinstance(device_class, DeviceClass):
            raise TypeError("register_device_class expects a DeviceClass")
        if device_class.name in self._class_index:
            raise ValueError(f"device class {device_class.name!r} is already registered")
        self._class_index[device_class.name] = len(self._classes)
        self._classes.append(device_class)
        self._class_policy.append(self._policy)
        self._grow_class_lists(len(self._classes))
        self._sync_policies()
        self._load_mix(self._mix.resized(self._classes))

    def set_policy(self, policy, device_class=None):
        chosen = Policy(policy)
        if device_class is None:
            self._policy = chosen
            self._policy_c = policy_code(chosen)
            self._class_policy = [chosen] * len(self._classes)
        else:
            self._class_policy[self._class_id(device_class)] = chosen
        self._sync_policies()

    def set_workload_mix(self, shapes):
        self._recent = None
        self._load_mix(MixTable.build(list(shapes), self._classes))

    cdef _sync_policies(self):
        cdef Py_ssize_t k, count = len(self._classes)
        free(self._class_policy_c)
        self._class_policy_c = <int32_t*>malloc((count + 1) * sizeof(int32_t))
        if self._class_policy_c == NULL:
            raise MemoryError()
        for k in range(count):
            self._class_policy_c[k] = policy_code(self._class_policy[k])
        self._epoch += 1
        self._drop_indexes()

    cdef _grow_class_lists(self, Py_ssize_t count):
        cdef int32_t** slots = <int32_t**>realloc(self._class_slots, count * sizeof(int32_t*))
        if slots == NULL:
            raise MemoryError()
        self._class_slots = slots
        cdef int32_t* counts = <int32_t*>realloc(self._class_count, count * sizeof(int32_t))
        if counts == NULL:
            raise MemoryError()
        self._class_count = counts
        cdef int32_t* caps = <int32_t*>realloc(self._class_cap, count * sizeof(int32_t))
        if caps == NULL:
            raise MemoryError()
        self._class_cap = caps
        while self._class_lists < count:
            self._class_slots[self._class_lists] = NULL
            self._class_count[self._class_lists] = 0
            self._class_cap[self._class_lists] = 0
            self._class_lists += 1

    cdef _list_add(self, Py_ssize_t slot):
        cdef int k = self._n[slot].dclass
        cdef int32_t cap
        cdef int32_t* grown
        if k < 0:
            return
        if self._class_count[k] == self._class_cap[k]:
            cap = max(64, 2 * self._class_cap[k])
            grown = <int32_t*>realloc(self._class_slots[k], cap * sizeof(int32_t))
            if grown == NULL:
                raise MemoryError()
            self._class_slots[k] = grown
            self._class_cap[k] = cap
        self._n[slot].class_pos = self._class_count[k]
        self._class_slots[k][self._class_count[k]] = <int32_t>slot
        self._class_count[k] += 1

    cdef _list_remove(self, Py_ssize_t slot):
        cdef int k = self._n[slot].dclass
        cdef int32_t pos, last
        if k < 0:
            return
        pos = self._n[slot].class_pos
        self._class_count[k] -= 1
        last = self._class_slots[k][self._class_count[k]]
        self._class_slots[k][pos] = last
        self._n[last].class_pos = pos

    cdef _free_mix(self):
        free(self._mixc.const_w)
        free(self._mixc.rows)
        free(self._mixc.start)
        free(self._mixc.end)
        free(self._mixc.waste)
        free(self._mixc.level)
        free(self._mixc.curve_start)
        free(self._mixc.curve_end)
        memset(&self._mixc, 0, sizeof(MixC))

    cdef _load_mix(self, table):
        cdef Py_ssize_t k, r = 0, count = len(table.const_weight)
        cdef Py_ssize_t rows = sum(len(s) for s in table.shapes)
        cdef Py_ssize_t curves = sum(len(c) for c in table.waste), c = 0, f
        self._free_mix()
        self._mixc.const_w = <int64_t*>malloc((count + 1) * sizeof(int64_t))
        self._mixc.rows = <int64_t*>malloc((5 * rows + 1) * sizeof(int64_t))
        self._mixc.start = <int32_t*>malloc((count + 1) * sizeof(int32_t))
        self._mixc.end = <int32_t*>malloc((count + 1) * sizeof(int32_t))
        self._mixc.waste = <int64_t*>malloc((curves * (CWHOLE + 1) + 1) * sizeof(int64_t))
        self._mixc.level = <int64_t*>malloc((curves + 1) * sizeof(int64_t))
        self._mixc.curve_start = <int32_t*>malloc((count + 1) * sizeof(int32_t))
        self._mixc.curve_end = <int32_t*>malloc((count + 1) * sizeof(int32_t))
        if (self._mixc.const_w == NULL or self._mixc.rows == NULL or self._mixc.start == NULL
                or self._mixc.end == NULL or self._mixc.waste == NULL or self._mixc.level == NULL
                or self._mixc.curve_start == NULL or self._mixc.curve_end == NULL):
            raise MemoryError()
        self._mixc.dead = table.dead_weight
        self._mixc.classes = <int32_t>count
        for k in range(count):
            self._mixc.const_w[k] = table.const_weight[k]
            self._mixc.start[k] = <int32_t>r
            for row in table.shapes[k]:
                for i in range(5):
                    self._mixc.rows[5 * r + i] = row[i]
                r += 1
            self._mixc.end[k] = <int32_t>r
            self._mixc.curve_start[k] = <int32_t>c
            for level, waste in table.waste[k]:
                self._mixc.level[c] = level
                for f in range(CWHOLE + 1):
                    self._mixc.waste[c * (CWHOLE + 1) + f] = waste[f]
                c += 1
            self._mixc.curve_end[k] = <int32_t>c
        self._mix = table
        self._epoch += 1
        self._drop_indexes()
        for k in range(self._len):
            self._n[k].frag_cache = -1

    cdef _refresh_mix(self):
        if self._recent is not None and self._recent.dirty:
            self._load_mix(self._recent.table(self._classes))

    # --- nodes -----------------------------------------------------------------------------
    def add_node(self, name, device_class, int64_t cpu_milli, int64_t memory_mib, int64_t pods,
                 *, int devices=0, labels=None, rack="", super_node="", schedulable=True):
        if name in self._slot_of:
            raise ValueError(f"node {name!r} already exists")
        cdef int class_id = self._node_class(name, device_class, devices)
        check_node_args(name, cpu_milli, memory_mib, pods)
        cdef Py_ssize_t slot
        if self._free_slots:
            slot = self._free_slots.pop()
        else:
            slot = self._len
            self._grow(self._len + 1)
            self._len += 1
            self._names.append(None)
            self._labels.append(None)
            self._racks.append(None)
            self._supers.append(None)
        cdef NodeRec* nd = &self._n[slot]
        memset(nd, 0, sizeof(NodeRec))
        nd.cpu_cap = nd.cpu_free = cpu_milli
        nd.mem_cap = nd.mem_free = memory_mib
        nd.pods_cap = nd.pods_free = pods
        nd.ndev = devices
        nd.dclass = class_id
        nd.group = min(self._classes[class_id].group_size, devices) if class_id >= 0 else 1
        nd.alive = 1
        for i in range(devices):
            nd.dev[i] = CWHOLE
        self._set_meta(slot, name, labels, rack, super_node, schedulable)
        nd.signature = state_signature(nd)
        nd.frag_cache = -1
        memset(&self._cache[slot], 0, sizeof(NodeCache))
        self._list_add(slot)
        self._slot_of[name] = slot
        self._pods_on[slot] = set()
        self._dev_total += devices * CWHOLE
        self._dev_free += devices * CWHOLE
        self._touch(slot)

    def update_node(self, name, device_class, int64_t cpu_milli, int64_t memory_mib,
                    int64_t pods, *, int devices=0, labels=None, rack="", super_node="",
                    schedulable=True):
        cdef Py_ssize_t slot = self._slot(name)
        cdef NodeRec* nd = &self._n[slot]
        cdef int class_id = self._node_class(name, device_class, devices)
        check_node_args(name, cpu_milli, memory_mib, pods)
        used_devices = [i for i in range(nd.ndev) if nd.dev[i] < CWHOLE]
        if (class_id != nd.dclass or devices != nd.ndev) and used_devices:
            raise ValueError(
                f"node {name!r}: cannot change device class or count while devices "
                f"{used_devices} are allocated"
            )
        nd.cpu_free += cpu_milli - nd.cpu_cap
        nd.mem_free += memory_mib - nd.mem_cap
        nd.pods_free += pods - nd.pods_cap
        nd.cpu_cap = cpu_milli
        nd.mem_cap = memory_mib
        nd.pods_cap = pods
        if devices != nd.ndev:
            self._dev_total += (devices - nd.ndev) * CWHOLE
            self._dev_free += (devices - nd.ndev) * CWHOLE
            nd.ndev = devices
            for i in range(devices):
                nd.dev[i] = CWHOLE
        if class_id != nd.dclass:
            self._list_remove(slot)
            nd.dclass = class_id
            self._list_add(slot)
        nd.group = min(self._classes[class_id].group_size, devices) if class_id >= 0 else 1
        self._set_meta(slot, name, labels, rack, super_node, schedulable)
        nd.signature = state_signature(nd)
        nd.frag_cache = -1
        nd.version += 1
        self._touch(slot)

    def remove_node(self, name):
        cdef Py_ssize_t slot = self._slot(name)
        del self._slot_of[name]
        for key in self._pods_on.pop(slot):
            del self._pods[key]
        self._dev_total -= self._n[slot].ndev * CWHOLE
        for i in range(self._n[slot].ndev):
            self._dev_free -= self._n[slot].dev[i]
        self._list_remove(slot)
        self._n[slot].alive = 0
        self._touch(slot)
        self._names[slot] = None
        self._labels[slot] = None
        self._free_slots.append(slot)

    cdef _set_meta(self, Py_ssize_t slot, name, labels, rack, super_node, schedulable):
        cdef NodeRec* nd = &self._n[slot]
        self._names[slot] = name
        self._labels[slot] = dict(labels or {})
        self._racks[slot] = rack
        self._supers[slot] = super_node
        nd.sched = 1 if schedulable else 0
        nd.rack = self._domain_id(rack)
        nd.superid = self._domain_id(super_node)

    cdef int _domain_id(self, name) except -2:
        found = self._domain_ids.get(name)
        if found is None:
            found = len(self._domain_ids)
            self._domain_ids[name] = found
        return found

    cdef _grow(self, Py_ssize_t needed):
        cdef Py_ssize_t cap = self._cap
        cdef NodeRec* grown
        if needed <= cap:
            return
        cap = max(64, cap * 2, needed)
        grown = <NodeRec*>realloc(self._n, cap * sizeof(NodeRec))
        if grown == NULL:
            raise MemoryError()
        self._n = grown
        cdef NodeCache* cache = <NodeCache*>realloc(self._cache, cap * sizeof(NodeCache))
        if cache == NULL:
            raise MemoryError()
        self._cache = cache
        self._cap = cap
        self._drop_indexes()

    # --- pods ------------------------------------------------------------------------------
    def bind(self, pod_key, node, int64_t cpu_milli, int64_t memory_mib, *, devices=0,
             int milli=WHOLE):
        if pod_key in self._pods:
            raise ValueError(f"pod {pod_key!r} is already bound")
        slot_obj = self._slot_of.get(node)
        if slot_obj is None:
            raise ValueError(f"bind {pod_key!r}: unknown node {node!r}")
        cdef Py_ssize_t slot = slot_obj
        cdef NodeRec* nd = &self._n[slot]
        if not 0 < milli <= WHOLE:
            raise ValueError(f"bind {pod_key!r}: milli must be 1..{WHOLE}, got {milli}")
        if isinstance(devices, int):
            chosen = self._pick_for_bind(pod_key, slot, devices, milli)
        else:
            chosen = tuple(devices)
            for i in chosen:
                if not 0 <= i < nd.ndev or nd.dev[i] < milli:
                    raise ValueError(
                        f"bind {pod_key!r}: device {i} on {node!r} does not have {milli} milli free"
                    )
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"bind {pod_key!r}: device indices repeat: {chosen}")
        self._apply_py(slot, cpu_milli, memory_mib, chosen, milli, -1)
        self._pods[pod_key] = (slot, cpu_milli, memory_mib, chosen, milli)
        self._pods_on[slot].add(pod_key)
        return chosen

    def release(self, pod_key):
        pod = self._pods.pop(pod_key, None)
        if pod is None:
            raise KeyError(f"release: unknown pod {pod_key!r}")
        slot, cpu, mem, devices, milli = pod
        self._apply_py(slot, cpu, mem, devices, milli, +1)
        self._pods_on[slot].discard(pod_key)

    def release_gang(self, gang_id):
        keys = self._gangs.pop(gang_id, None)
        if keys is None:
            raise KeyError(f"release_gang: unknown gang {gang_id!r}")
        for key in keys:
            if key in self._pods:
                self.release(key)

    cdef _apply_py(self, Py_ssize_t slot, int64_t cpu, int64_t mem, devices, int milli,
                   int sign):
        cdef NodeRec* nd = &self._n[slot]
        nd.cpu_free += sign * cpu
        nd.mem_free += sign * mem
        nd.pods_free += sign
        for i in devices:
            nd.dev[<int>i] += sign * milli
        self._dev_free += sign * milli * len(devices)
        nd.signature = state_signature(nd)
        nd.frag_cache = -1
        nd.version += 1
        self._touch(slot)

    cdef int64_t _balance_weight(self):
        """BALANCE_WEIGHT x mix weight x utilisation^2 (ppm); same integer steps as reference."""
        cdef int64_t used_ppm
        if self._dev_total == 0:
            return 0
        used_ppm = (self._dev_total - self._dev_free) * PPM // self._dev_total
        return self._mix.total_weight * BALANCE_WEIGHT * (used_ppm * used_ppm // PPM) // PPM

    cdef inline void _apply_c(self, Py_ssize_t slot, int64_t cpu, int64_t mem,
                              const int32_t* devs, int count, int milli,
                              int sign) noexcept nogil:
        cdef NodeRec* nd = &self._n[slot]
        cdef int i
        nd.cpu_free += sign * cpu
        nd.mem_free += sign * mem
        nd.pods_free += sign
        for i in range(count):
            nd.dev[devs[i]] += sign * milli
        self._dev_free += sign * milli * count
        nd.signature = state_signature(nd)
        nd.frag_cache = -1
        nd.version += 1
        self._touch(slot)

    cdef _pick_for_bind(self, pod_key, Py_ssize_t slot, int count, int milli):
        cdef int32_t cands[MAXD * MAXD]
        cdef NodeRec* nd = &self._n[slot]
        cdef int ncand
        if count < 0 or count > MAXD:
            raise ValueError(f"bind {pod_key!r}: device count must be 0..{MAXD}, got {count}")
        ncand = enumerate_candidates(nd.dev, nd.ndev, nd.group, count, milli, cands)
        if ncand:
            return tuple(cands[i] for i in range(count))
        loose = tuple(i for i in range(nd.ndev) if nd.dev[i] >= milli)[:count]
        if len(loose) < count:
            raise ValueError(
                f"bind {pod_key!r}: node {self._names[slot]!r} has {len(loose)} devices with "
                f"{milli} milli free, the pod needs {count}"
            )
        return loose

    # --- placement -------------------------------------------------------------------------
    def place(self, gang):
        if gang.id in self._gangs:
            raise ValueError(f"gang {gang.id!r} is already placed")
        self._refresh_mix()
        legal = self._all_options_legal(gang)
        if legal is None:
            legal, problems = legal_options(gang, self._class_index, self._classes)
            if not legal:
                return illegal_options_failure(gang, problems)
        best = None
        most_fit = 0
        unconstrained_fit = False
        first_wanted = 0
        for index in legal:
            option = gang.options[index]
            want = gang.replicas_for(option)
            need = gang.min_replicas_for(option)
            first_wanted = first_wanted or want
            placed, score, free_fit = self._try_option(gang, option, want)
            most_fit = max(most_fit, len(placed))
            unconstrained_fit = unconstrained_fit or free_fit >= need
            if len(placed) < need:
                continue
            candidate = (-len(placed), score, index, placed)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
            if not gang.choose_best_option:
                break
        if best is None:
            option = gang.options[legal[0]]
            if gang.topology == TOPO_REQUIRE and unconstrained_fit:
                return failure_topology(gang, option, first_wanted, most_fit)
            return failure_insufficient(gang, option, first_wanted, most_fit,
                                        self._free_whole(option))
        _, _, index, placed = best
        return self._commit(gang, index, placed)

    cdef list _all_options_legal(self, gang):
        """Every option's index when all are legal (the usual case: no messages to build),
        else None and ``legal_options`` sorts them out. Same rules as ``check_shape``."""
        cdef list legal = []
        cdef Py_ssize_t k
        cdef long replicas, count, milli
        options = gang.options
        for k in range(len(options)):
            option = options[k]
            name = option.device_class
            if name is None:
                legal.append(k)
                continue
            class_id = self._class_index.get(name)
            if class_id is None:
                return None
            dc = self._classes[class_id]
            override = option.replicas
            replicas = gang.replicas if override is None else override
            count = option.devices_per_replica
            milli = option.milli
            if replicas < 1 or milli <= 0 or milli > CWHOLE:
                return None
            if milli < CWHOLE:
                if not dc.fractional or count != 1:
                    return None
            else:
                if count not in dc.allowed_counts:
                    return None
                multi = dc.multi_replica_count
                if replicas > 1 and multi is not None and count != multi:
                    return None
            legal.append(k)
        return legal

    cdef tuple _try_option(self, gang, option, int want):
        free_run = self._greedy(gang, option, want, -1)
        if gang.topology == TOPO_NONE:
            return free_run[0], free_run[1], len(free_run[0])
        best = None
        for domain in self._domains(gang.topology_level):
            placed, score = self._greedy(gang, option, want, self._domain_ids[domain])
            candidate = (-len(placed), score, domain, placed)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
        need = gang.min_replicas_for(option)
        if best is not None and -best[0] >= need:
            return best[3], best[1], len(free_run[0])
        if gang.topology == TOPO_PREFER:
            return free_run[0], free_run[1], len(free_run[0])
        return (best[3] if best else []), (), len(free_run[0])

    cdef tuple _greedy(self, gang, option, int want, int domain):
        cdef int class_id = -1
        cdef int policy = self._policy_c
        cdef int count = option.devices_per_replica
        cdef int milli = option.milli
        cdef int64_t cpu = option.cpu_milli
        cdef int64_t mem = option.memory_mib
        cdef int level_rack = 1 if gang.topology_level == LEVEL_RACK else 0
        cdef int r, placed_n = 0, i
        cdef Py_ssize_t slot
        cdef Choice choice
        cdef int64_t total[3]
        cdef int32_t* placed_slots
        cdef int32_t* placed_devs
        cdef unsigned char* mask = NULL
        cdef bytearray mask_buf
        if option.device_class is not None:
            class_id = self._class_index[option.device_class]
            policy = self._class_policy_c[class_id]
        if gang.node_selector:
            mask_buf = self._selector_mask(gang.node_selector)
            mask = <unsigned char*><char*>mask_buf
        placed_slots = <int32_t*>malloc((want + 1) * sizeof(int32_t))
        placed_devs = <int32_t*>malloc((want + 1) * MAXD * sizeof(int32_t))
        if placed_slots == NULL or placed_devs == NULL:
            free(placed_slots)
            free(placed_devs)
            raise MemoryError()
        total[0] = total[1] = total[2] = 0
        try:
            for r in range(want):
                slot = self._best_node(class_id, policy, cpu, mem, count, milli, level_rack,
                                       domain, mask, &choice)
                if slot < 0:
                    break
                self._apply_c(slot, cpu, mem, choice.dev, count, milli, -1)
                placed_slots[placed_n] = <int32_t>slot
                memcpy(placed_devs + placed_n * MAXD, choice.dev, count * sizeof(int32_t))
                placed_n += 1
                for i in range(3):
                    total[i] += choice.key[i]
            for r in range(placed_n - 1, -1, -1):
                self._apply_c(placed_slots[r], cpu, mem, placed_devs + r * MAXD, count, milli, 1)
            placed = []
            for r in range(placed_n):
                devices = PyTuple_New(count)
                for i in range(count):
                    value = placed_devs[r * MAXD + i]
                    Py_INCREF(value)
                    PyTuple_SET_ITEM(devices, i, value)
                placed.append((placed_slots[r], devices))
        finally:
            free(placed_slots)
            free(placed_devs)
        score = () if placed_n == 0 else (total[0], total[1], total[2])
        return placed, score

    cdef Py_ssize_t _best_node(self, int class_id, int policy, int64_t cpu, int64_t mem,
                               int count, int milli, int level_rack, int domain,
                               const unsigned char* mask, Choice* best):
        """Smallest-key node (ties: lowest slot), or -1.

        A request shape seen before, with no topology domain or selector, is answered by its
        per-shape index (``_best_node_indexed``: sub-linear). Otherwise only the nodes of the
        requested class are visited, and two caches keep each visit cheap: each node
        remembers its choice for its last few request shapes until its state changes, and
        within one decision, nodes in equal states are scored once. ``use_memo = False``
        switches the index and both caches off (tests compare).
        """
        cdef Py_ssize_t i, visits, slot, best_slot = -1
        cdef NodeRec* nd
        cdef Choice here
        cdef CachedKey* known
        cdef NodeCache* cache
        cdef int way
        cdef uint64_t shape
        cdef bint memo = self.use_memo
        cdef ShapeIndex* ix
        cdef int64_t balance = self._balance_weight() if policy == P_FRAG else 0
        cdef int64_t key[3]
        cdef int64_t best_key[3]
        cdef const int32_t* slots = NULL
        shape = mixin(mixin(mixin(mixin(mixin(mixin(self._epoch, <uint64_t>(class_id + 1)),
                      <uint64_t>policy), <uint64_t>count), <uint64_t>milli), <uint64_t>cpu),
                      <uint64_t>mem)
        best_key[0] = best_key[1] = best_key[2] = 0
        if class_id >= 0:
            slots = self._class_slots[class_id]
            visits = self._class_count[class_id]
        else:
            visits = self._len
        if memo:
            self._memo_ready()
        if memo and class_id >= 0 and domain < 0 and mask == NULL:
            ix = self._index_for(class_id, policy, cpu, mem, count, milli, shape)
            if ix != NULL:
                best_slot = self._best_node_indexed(ix, cpu, mem, count, milli, policy,
                                                    balance, best)
                if best_slot != -2:
                    return best_slot
                best_slot = -1
        with nogil:
            for i in range(visits):
                slot = slots[i] if slots != NULL else i
                nd = &self._n[slot]
                if not nd.alive or not nd.sched:
                    continue
                if class_id >= 0 and nd.dclass != class_id:
                    continue
                if domain >= 0 and (nd.rack if level_rack else nd.superid) != domain:
                    continue
                if mask != NULL and not mask[slot]:
                    continue
                if nd.pods_free < 1 or nd.cpu_free < cpu or nd.mem_free < mem:
                    continue
                if memo:
                    cache = &self._cache[slot]
                    known = NULL
                    for way in range(CACHE_WAYS):
                        if cache.shape[way] == shape and cache.version[way] == nd.version:
                            known = &cache.entry[way]
                            break
                    if known == NULL:
                        known = self._known(slot, shape, cpu, mem, count, milli, policy)
                    if not known.fits:
                        continue
                    effective_key(known.key, known.imbalance, balance, key)
                else:
                    score_node(nd, cpu, mem, count, milli, policy, &self._mixc, &here)
                    if not here.fits:
                        continue
                    effective_key(here.key, here.imbalance, balance, key)
                if (best_slot < 0 or key_less(key, best_key)
                        or (slot < best_slot and not key_less(best_key, key))):
                    best_slot = slot
                    best_key[0] = key[0]
                    best_key[1] = key[1]
                    best_key[2] = key[2]
        if best_slot >= 0:
            # Cached choices hold keys only: the device indices come from the chosen node itself
            # (nodes in equal states may hold their free devices at other indices).
            score_node(&self._n[best_slot], cpu, mem, count, milli, policy, &self._mixc, best)
            effective_key(best.key, best.imbalance, balance, best.key)
        return best_slot

    cdef CachedKey* _known(self, Py_ssize_t slot, uint64_t shape, int64_t cpu, int64_t mem,
                           int count, int milli, int policy) noexcept nogil:
        """The node's best choice for this shape: from its own cache if its state has not
        changed, else from this decision's memo of equal states, else scored (call
        ``_memo_ready`` once per decision first)."""
        cdef NodeRec* nd = &self._n[slot]
        cdef NodeCache* cache = &self._cache[slot]
        cdef CachedKey* known
        cdef Choice* scored
        cdef uint64_t sig
        cdef Py_ssize_t h
        cdef int way
        for way in range(CACHE_WAYS):
            if cache.shape[way] == shape and cache.version[way] == nd.version:
                return &cache.entry[way]
        sig = nd.signature
        h = <Py_ssize_t>(sig & <uint64_t>(self._memo_cap - 1))
        while True:
            if self._memo_gen[h] != self._gen:
                score_node(nd, cpu, mem, count, milli, policy, &self._mixc,
                           &self._memo_choice[h])
                self._memo_gen[h] = self._gen
                self._memo_sig[h] = sig
                break
            if self._memo_sig[h] == sig:
                break
            h = (h + 1) & (self._memo_cap - 1)
        scored = &self._memo_choice[h]
        way = cache.next
        cache.next = (way + 1) % CACHE_WAYS
        cache.shape[way] = shape
        cache.version[way] = nd.version
        known = &cache.entry[way]
        known.key[0] = scored.key[0]
        known.key[1] = scored.key[1]
        known.key[2] = scored.key[2]
        known.imbalance = scored.imbalance
        known.fits = scored.fits
        return known

    cdef Py_ssize_t _best_node_indexed(self, ShapeIndex* ix, int64_t cpu, int64_t mem,
                                       int count, int milli, int policy, int64_t balance,
                                       Choice* best):
        """``_best_node`` through the per-shape index (no domain, no selector, one class)."""
        cdef Py_ssize_t best_slot
        cdef int64_t best_key[3]
        best_key[0] = best_key[1] = best_key[2] = 0
        with nogil:
            self._index_refresh(ix)
            best_slot = index_query(ix, balance, best_key)
        if best_slot >= 0:
            score_node(&self._n[best_slot], cpu, mem, count, milli, policy, &self._mixc, best)
            effective_key(best.key, best.imbalance, balance, best.key)
        return best_slot    # -2: too many key[0] values to visit, scan instead

    cdef ShapeIndex* _index_for(self, int class_id, int policy, int64_t cpu, int64_t mem,
                                int count, int milli, uint64_t shape) except? NULL:
        """The live index for this request shape, or NULL while the shape is rare (building
        an index costs some 15-20 scans, so rare shapes are scanned); built (all the class's
        nodes dirty) once it was asked for ``index_after`` times in the current mix epoch, the
        least recently used index making room."""
        cdef int w, victim = 0
        cdef ShapeIndex* ix
        cdef Py_ssize_t i, cap = self._cap
        cdef Py_ssize_t seen = <Py_ssize_t>(shape & (SEEN_SLOTS - 1))
        self._ix_clock += 1
        for w in range(MAX_INDEXES):
            ix = &self._ix[w]
            if (ix.used and ix.shape == shape and ix.class_id == class_id and ix.policy == policy
                    and ix.count == count and ix.milli == milli and ix.cpu == cpu
                    and ix.mem == mem):
                ix.last_used = self._ix_clock
                return ix
            if ix.last_used < self._ix[victim].last_used:
                victim = w
        if self._seen[seen] != shape:
            self._seen[seen] = shape
            self._seen_count[seen] = 0
        self._seen_count[seen] += 1
        if <int64_t>self._seen_count[seen] < self.index_after:
            return NULL
        self._seen_count[seen] = 0
        ix = &self._ix[victim]
        index_free(ix)
        ix.left = <int32_t*>malloc((cap + 1) * sizeof(int32_t))
        ix.right = <int32_t*>malloc((cap + 1) * sizeof(int32_t))
        ix.agg = <int32_t*>malloc((cap + 1) * sizeof(int32_t))
        ix.a = <int64_t*>malloc((cap + 1) * sizeof(int64_t))
        ix.m = <int64_t*>malloc((cap + 1) * sizeof(int64_t))
        ix.k1 = <int64_t*>malloc((cap + 1) * sizeof(int64_t))
        ix.k2 = <int64_t*>malloc((cap + 1) * sizeof(int64_t))
        ix.sig = <uint64_t*>malloc((cap + 1) * sizeof(uint64_t))
        ix.present = <unsigned char*>malloc(cap + 1)
        ix.dirty = <unsigned char*>malloc(cap + 1)
        ix.dirty_list = <int32_t*>malloc((cap + 1) * sizeof(int32_t))
        if (ix.left == NULL or ix.right == NULL or ix.agg == NULL or ix.a == NULL
                or ix.m == NULL or ix.k1 == NULL or ix.k2 == NULL or ix.sig == NULL
                or ix.present == NULL or ix.dirty == NULL or ix.dirty_list == NULL):
            index_free(ix)
            raise MemoryError()
        memset(ix.present, 0, cap + 1)
        memset(ix.dirty, 0, cap + 1)
        ix.root = -1
        ix.ndirty = 0
        ix.cap = cap
        ix.class_id = class_id
        ix.policy = policy
        ix.count = count
        ix.milli = milli
        ix.cpu = cpu
        ix.mem = mem
        ix.shape = shape
        ix.used = 1
        ix.last_used = self._ix_clock
        for i in range(self._class_count[class_id]):
            index_touch(ix, self._class_slots[class_id][i])
        return ix

    cdef void _index_refresh(self, ShapeIndex* ix) noexcept nogil:
        """Re-score the index's dirty nodes whose state signature moved."""
        cdef Py_ssize_t k, slot
        cdef NodeRec* nd
        cdef CachedKey* known = NULL
        cdef bint eligible
        cdef bint bulk = ix.root < 0
        cdef Py_ssize_t nbulk = 0
        for k in range(ix.ndirty):
            slot = ix.dirty_list[k]
            ix.dirty[slot] = 0
            nd = &self._n[slot]
            eligible = (slot < self._len and nd.alive and nd.sched and nd.dclass == ix.class_id
                        and nd.pods_free >= 1 and nd.cpu_free >= ix.cpu
                        and nd.mem_free >= ix.mem)
            if eligible:
                if ix.present[slot] and ix.sig[slot] == nd.signature:
                    continue
                known = self._known(slot, ix.shape, ix.cpu, ix.mem, ix.count, ix.milli,
                                    ix.policy)
                eligible = known.fits
            if ix.present[slot]:
                treap_erase(ix, <int32_t>slot)
                ix.present[slot] = 0
            if eligible:
                ix.a[slot] = known.key[0]
                ix.m[slot] = known.imbalance
                ix.k1[slot] = known.key[1]
                ix.k2[slot] = known.key[2]
                ix.sig[slot] = nd.signature
                ix.present[slot] = 1
                if bulk:
                    ix.dirty_list[nbulk] = <int32_t>slot   # nbulk <= k: already read
                    nbulk += 1
                else:
                    treap_insert(ix, <int32_t>slot)
        if bulk and not treap_bulk(ix, ix.dirty_list, nbulk):
            for k in range(nbulk):
                treap_insert(ix, ix.dirty_list[k])
        ix.ndirty = 0

    cdef inline void _touch(self, Py_ssize_t slot) noexcept nogil:
        cdef int w
        for w in range(MAX_INDEXES):
            index_touch(&self._ix[w], slot)

    cdef _drop_indexes(self):
        cdef int w
        for w in range(MAX_INDEXES):
            index_free(&self._ix[w])

    cdef _memo_ready(self):
        """Start a new decision: bump the generation; size the table to >= 2x the nodes."""
        cdef Py_ssize_t want = 1024
        while want < 2 * self._len:
            want *= 2
        self._gen += 1
        if want != self._memo_cap or self._gen == 0:
            free(self._memo_sig)
            free(self._memo_gen)
            free(self._memo_choice)
            self._memo_sig = <uint64_t*>malloc(want * sizeof(uint64_t))
            self._memo_gen = <uint32_t*>malloc(want * sizeof(uint32_t))
            self._memo_choice = <Choice*>malloc(want * sizeof(Choice))
            if self._memo_sig == NULL or self._memo_gen == NULL or self._memo_choice == NULL:
                self._memo_cap = 0
                raise MemoryError()
            memset(self._memo_gen, 0, want * sizeof(uint32_t))
            self._memo_cap = want
            self._gen = 1

    cdef bytearray _selector_mask(self, node_selector):
        cdef bytearray mask = bytearray(self._len + 1)
        for slot in range(self._len):
            labels = self._labels[slot]
            if labels is not None and all(labels.get(k) == v for k, v in node_selector):
                mask[slot] = 1
        return mask

    cdef _commit(self, gang, int index, list placed):
        option = gang.options[index]
        keys = []
        assignments = []
        for replica, (slot, devices) in enumerate(placed):
            key = f"{gang.id}/{replica}"
            self._apply_py(slot, option.cpu_milli, option.memory_mib, devices, option.milli, -1)
            self._pods[key] = (slot, option.cpu_milli, option.memory_mib, devices, option.milli)
            self._pods_on[slot].add(key)
            keys.append(key)
            assignments.append(ReplicaAssignment(self._names[slot], devices, option.milli))
        self._gangs[gang.id] = keys
        if self._recent is not None:
            self._recent.observe(option, len(placed))
        return Placement(gang.id, index, option.device_class, tuple(assignments))

    # --- reporting -------------------------------------------------------------------------
    def capacity_summary(self):
        self._refresh_mix()
        cdef Py_ssize_t slot
        cdef NodeRec* nd
        cdef int64_t free_milli
        cdef int i
        totals = {dc.name: [0, 0, 0, 0, 0, 0, 0] for dc in self._classes}
        for slot in range(self._len):
            nd = &self._n[slot]
            if not nd.alive or nd.dclass < 0:
                continue
            row = totals[self._classes[nd.dclass].name]
            free_milli = 0
            whole = 0
            for i in range(nd.ndev):
                free_milli += nd.dev[i]
                if nd.dev[i] == CWHOLE:
                    whole += 1
            row[0] += 1
            row[1] += nd.ndev
            row[2] += nd.ndev * CWHOLE - free_milli
            row[3] += free_milli
            row[4] += whole
            row[5] += self._unusable(nd, free_milli)
            row[6] += expected_fragmentation(&self._mixc, nd.dclass, nd.cpu_free, nd.mem_free,
                                             nd.pods_free, nd.dev, nd.ndev, nd.group)
        weights = self._mix.total_weight
        return {
            name: ClassCapacity(name, row[0], row[1], row[2], row[3], row[4], row[5],
                                row[6] // weights if weights else 0)
            for name, row in totals.items()
        }

    cdef int64_t _unusable(self, NodeRec* nd, int64_t free_milli):
        cdef int64_t partial = 0
        cdef int i
        if not nd.sched or nd.pods_free < 1 or nd.cpu_free <= 0 or nd.mem_free <= 0:
            return free_milli
        if self._classes[nd.dclass].fractional:
            return 0
        for i in range(nd.ndev):
            if nd.dev[i] < CWHOLE:
                partial += nd.dev[i]
        return partial

    def node_free(self, name):
        cdef NodeRec* nd = &self._n[self._slot(name)]
        return nd.cpu_free, nd.mem_free, nd.pods_free, tuple(nd.dev[i] for i in range(nd.ndev))

    def node_names(self):
        return [name for name in self._names if name is not None]

    def pod_keys(self):
        return sorted(self._pods)

    def gang_pods(self, gang_id):
        return list(self._gangs.get(gang_id, []))

    # --- helpers ---------------------------------------------------------------------------
    cdef int _class_id(self, name) except -2:
        try:
            return self._class_index[name]
        except KeyError:
            raise ValueError(f"unknown device class {name!r}") from None

    cdef int _node_class(self, name, device_class, int devices) except -2:
        if device_class is None:
            if devices:
                raise ValueError(f"node {name!r}: devices={devices} needs a device_class")
            return -1
        class_id = self._class_id(device_class)
        limit = self._classes[class_id].devices_per_node
        if not 0 <= devices <= limit:
            raise ValueError(f"node {name!r}: devices must be 0..{limit} for {device_class}")
        return class_id

    cdef Py_ssize_t _slot(self, name) except -1:
        slot = self._slot_of.get(name)
        if slot is None:
            raise KeyError(f"unknown node {name!r}")
        return slot

    cdef list _domains(self, level):
        names = self._racks if level == TopologyLevel.RACK else self._supers
        found = {names[s] for s in range(self._len) if self._n[s].alive}
        found.discard("")
        return sorted(found)

    cdef int64_t _free_whole(self, option):
        cdef int64_t total = 0
        cdef int class_id, i
        cdef NodeRec* nd
        if option.device_class is None:
            return 0
        class_id = self._class_index[option.device_class]
        for slot in range(self._len):
            nd = &self._n[slot]
            if nd.alive and nd.dclass == class_id and nd.sched:
                for i in range(nd.ndev):
                    if nd.dev[i] == CWHOLE:
                        total += 1
        return total
