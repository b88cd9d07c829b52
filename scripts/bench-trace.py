# gdb script (scripts/bench-trace.sh): counts the guest instructions of a
# few calls of a netfilter hook, per function, by single-stepping under
# QEMU's gdbstub (which keeps interrupts and timers off while it steps).
# Parameters come in the environment: TRACE_PORT, TRACE_HOOK (address),
# TRACE_CALLS, and TRACE_SKIP (calls let run untraced first: 1 to trace
# only refused lines once the first has used up a bucket).
import collections
import os
import re

import gdb

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("target remote :" + os.environ["TRACE_PORT"])
hook = int(os.environ["TRACE_HOOK"], 16)
calls = int(os.environ.get("TRACE_CALLS", "3"))
skip = int(os.environ.get("TRACE_SKIP", "0"))
gdb.execute("break *0x%x" % hook)
for _ in range(skip):
    gdb.execute("continue")


def name(pc):
    text = gdb.execute("info symbol 0x%x" % pc, to_string=True)
    m = re.match(r"(\S+)", text)
    sym = m.group(1) if m and not text.startswith("No symbol") else "?"
    # Rust v0 symbols: keep the readable identifiers (length-prefixed).
    if sym.startswith("_R"):
        idents = re.findall(r"\d+([A-Za-z_][A-Za-z0-9_]*)", sym)
        idents = [i for i in idents if not re.match(r"^(Cs|B\d|C)", i)]
        sym = "::".join(idents[-3:]) or sym
    return sym


for call in range(calls):
    gdb.execute("continue")
    sp0 = int(gdb.parse_and_eval("$sp"))
    ret = int(gdb.parse_and_eval("*(unsigned long *)$sp"))
    counts = collections.Counter()
    pcs = []
    order = []
    n = 0
    while True:
        pc = int(gdb.parse_and_eval("$pc"))
        if pc == ret and int(gdb.parse_and_eval("$sp")) > sp0:
            break
        f = name(pc)
        if f not in counts:
            order.append(f)
        counts[f] += 1
        pcs.append(pc)
        n += 1
        gdb.execute("stepi", to_string=True)
    print("@@trace call=%d instructions=%d" % (call + 1, n))
    for f in order:
        print("@@trace   %5d  %s" % (counts[f], f))
    if os.environ.get("TRACE_PCS"):
        print("@@trace   pcs " + " ".join("%x" % pc for pc in pcs))
gdb.execute("delete")
gdb.execute("detach")
