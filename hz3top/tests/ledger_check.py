#!/usr/bin/env python3
"""Compares the ledger of hz3top's last JSON report with the malloc_stats() the idle workload
printed a moment before, line by line. Not a test itself: t_hz3top_live.sh and
t_hz3top_ledger.sh run it.

Usage: ledger_check.py STATS_FILE JSON_FILE [--split] [--remote-objs N] [--inbox-objs N]
                       [--holder-tid TID] [--huge-blocks N]

malloc_stats lines look like "<mark> <bytes> (<MiB> MiB)  <label>". malloc_stats counts other
threads' undelivered remote frees as the application's, so hz3top's app_small + remote_pending
is malloc_stats' first line. --split requires the split lines (descriptor version 4);
--remote-objs / --inbox-objs the exact numbers of blocks parked in remote buckets and waiting
in inboxes; --holder-tid the thread whose heap holds the parked remote frees (remote_held).
Prints "ok (…)" or the mismatches."""
import argparse
import json
import re

ap = argparse.ArgumentParser()
ap.add_argument('stats')
ap.add_argument('report')
ap.add_argument('--split', action='store_true')
ap.add_argument('--remote-objs', type=int)
ap.add_argument('--inbox-objs', type=int)
ap.add_argument('--holder-tid', type=int)
ap.add_argument('--huge-blocks', type=int)
a = ap.parse_args()

stats = {}
for l in open(a.stats):
    m = re.match(r'^[ +=]\s+(\d+) \(\s*[\d.]+ MiB\)  (.*)$', l.rstrip('\n'))
    if m:
        stats[m.group(2)] = int(m.group(1))


def line(prefix):
    v = [b for k, b in stats.items() if k.startswith(prefix)]
    return v[-1] if v else None  # the last malloc_stats printed


def objs(prefix):
    v = [k for k in stats if k.startswith(prefix)]
    m = re.search(r'\((\d+) objects', v[-1]) if v else None
    return int(m.group(1)) if m else None


reports = [json.loads(l) for l in open(a.report) if l.strip()]
if not reports:
    print('no report')
    raise SystemExit(0)
g = reports[-1]['procs'][0].get('ledger')
if not g:
    print('no ledger in the report')
    raise SystemExit(0)
app, caches, inboxes = (line('in use by application: small/medium'), line('in thread caches'),
                        line('in remote-free inboxes'))
want = {
    'small_used': (app, caches, inboxes),
    'app_large': (line('in use by application: large'),),
    'span_free': (line('free in spans'),),
    'span_waste': (line('span tails'),),
    'pageheap': (line('page heap: free, dirty'), line('page heap: free, released')),
    'arena': (line('arena pages handed out'),),
    'huge': (line('huge blocks'),),
}
if any(x is None for v in want.values() for x in v):
    print(f'malloc_stats lines missing: {stats}')
    raise SystemExit(0)
got = {'small_used': g['small_used'], 'app_large': g['app_large'], 'span_free': g['span_free'],
       'span_waste': g['span_waste'], 'pageheap': g['pageheap_dirty'] + g['pageheap_released'],
       'arena': g['arena'], 'huge': g['huge']}
problems = []
for k, parts in want.items():
    if got[k] != sum(parts):
        problems.append(f'{k} {got[k]} != malloc_stats {sum(parts)}')
if g['unwalked']:
    problems.append(f"unwalked {g['unwalked']}")
if a.huge_blocks is not None and g['huge_blocks'] != a.huge_blocks:
    problems.append(f"huge_blocks {g['huge_blocks']}")
if not g['heaps']:
    problems.append('no heaps')
note = f"app_total {g['app_total']}, arena {g['arena']}, {len(g['heaps'])} heaps"
if a.split:
    if g.get('app_small') is None:
        problems.append('no split (app_small null)')
    else:
        split = {'app_small + remote_pending': (g['app_small'] + g['remote_pending'], app),
                 'thread_caches': (g['thread_caches'], caches), 'inboxes': (g['inboxes'], inboxes),
                 'cached_objs': (g['cached_objs'], objs('in thread caches')),
                 'inbox_objs': (g['inbox_objs'], objs('in remote-free inboxes'))}
        for k, (mine, theirs) in split.items():
            if mine != theirs:
                problems.append(f'{k} {mine} != malloc_stats {theirs}')
        if g['app_small'] + g['thread_caches'] + g['inboxes'] + g['remote_pending'] != g['small_used']:
            problems.append('the split does not add up to small_used')
        if a.remote_objs is not None and g['remote_objs'] != a.remote_objs:
            problems.append(f"remote_objs {g['remote_objs']} != {a.remote_objs}")
        if a.inbox_objs is not None and g['inbox_objs'] != a.inbox_objs:
            problems.append(f"inbox_objs {g['inbox_objs']} != {a.inbox_objs}")
        heaps = g['heaps']
        if sum(h.get('remote_pending', 0) for h in heaps) != g['remote_pending']:
            problems.append('per-heap remote_pending does not add up')
        if sum(h.get('remote_held', 0) for h in heaps) != g['remote_pending']:
            problems.append('per-heap remote_held does not add up')
        if sum(h.get('cached', 0) for h in heaps) != g['thread_caches']:
            problems.append('per-heap cached does not add up')
        if a.holder_tid is not None:
            hold = [h for h in heaps if h.get('tid') == a.holder_tid]
            if len(hold) != 1 or hold[0].get('remote_held') != g['remote_pending'] or \
                    hold[0].get('thread') != 'hz3wl-xfree':
                problems.append(f'holder {a.holder_tid}: {hold}')
        note += (f", app_small {g['app_small']}, caches {g['thread_caches']} ({g['cached_objs']}),"
                 f" inboxes {g['inboxes']} ({g['inbox_objs']}),"
                 f" remote {g['remote_pending']} ({g['remote_objs']})")
print('; '.join(problems) if problems else f'ok ({note})')
