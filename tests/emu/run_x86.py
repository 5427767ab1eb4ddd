#!/usr/bin/env python3
"""run_x86.py — run a static x86-64 Linux ELF on the Bochs CPU emulator.

Why: the AVX-512 kernels must be tested against the scalar reference on
machines without AVX-512 (qemu-user's TCG has no AVX-512; Intel SDE is not
available). BochsCPU (pip: bochscpu-python) implements AVX-512 incl. VNNI;
this script turns it into a tiny user-mode Linux: it loads the ELF, builds
4-level page tables, starts the program in ring 3 with a Linux-like initial
stack, and services the handful of syscalls a static, single-threaded glibc
test needs. Everything else returns -ENOSYS (reported on stderr).

  python3 tests/emu/run_x86.py [OPTIONS] BINARY [ARGS...]
    --cpu NAME     avx512 (default; Tiger Lake: AVX-512 F/CD/BW/DQ/VL, VNNI,
                   VBMI, IFMA, ..., no BF16), avx512bf16 (Sapphire Rapids:
                   those and AVX512_BF16), avx512-novnni (Skylake-X), avx2
                   (Arrow Lake, no AVX-512), or a model name from CPU_MODELS
    --stats        one line on stderr at exit: model, time, syscalls, memory
    --count-instructions   also count instructions (a Python hook per
                   instruction: about 10x slower; for measuring speed)
    --trace-syscalls       every syscall on stderr
    --mem-mb=N     guest physical memory reservation (default 4096, or
                   TL_EMU_MEM_MB)
    --check        only check that bochscpu loads (exit 0) and exit
  The guest sees the host's TL_*, LANG, LC_*, PATH and HOME variables.

Exit status: the program's own; 128+signal when it dies (SIGILL for #UD,
SIGSEGV for #PF/#GP, SIGFPE for #DE/#XM, SIGABRT for abort()); 125 when the
emulator itself cannot start (bochscpu missing, bad ELF). A fault prints
the rip after the faulting instruction and its symbol.

How a syscall is caught: LSTAR points at a one-instruction `sysretq` stub.
The far-branch hook sees SYSCALL and asks Bochs to stop after it; Python then
services the call (registers are read and written in place) and resumes,
and the stub's sysretq returns to the program with rcx/r11 as the CPU saved
them. No IDT exists: any CPU exception is fatal and reported by the
exception hook.

Guest memory: one host reservation (MAP_NORESERVE) is the guest's physical
memory; guest physical page N is host page N of it, handed to Bochs lazily
by the missing-page callback, so Python reads and writes guest memory
directly through a memoryview. Virtual pages map to physical pages through
page tables written by this script (all pages user+writable+executable:
protection is not emulated); the TLB is flushed after every unmap, and
mmap hands out fresh virtual ranges, never reusing unmapped ones.
"""

import ctypes
import mmap
import os
import struct
import sys
import time

# ---------------------------------------------------------------- bochscpu

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _die(msg, code=125):
    sys.stderr.write("run_x86: %s\n" % msg)
    sys.exit(code)


def _shim_path():
    """glibc_compat.so next to the venv (or in TL_EMU_CACHE): built on demand."""
    cache = os.environ.get("TL_EMU_CACHE") or os.path.join(REPO, "build-emu")
    return os.path.join(cache, "libglibc_compat.so")


def _build_shim(path):
    src = os.path.join(HERE, "glibc_compat.c")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp%d" % os.getpid()
    rc = os.system("cc -O2 -shared -fPIC -o '%s' '%s'" % (tmp, src))
    if rc != 0:
        _die("cannot build %s (needed by the bochscpu wheel on glibc < 2.38)" % path)
    os.replace(tmp, path)


def import_bochscpu():
    """Import bochscpu from sys.path or from a venv (TL_EMU_VENV, build-emu/venv).

    The 0.4.0 wheel references two glibc-2.38 symbols; on older glibc a
    shim defining them is loaded RTLD_GLOBAL first."""
    venvs = [os.environ.get("TL_EMU_VENV"), os.path.join(REPO, "build-emu", "venv")]
    ver = "python%d.%d" % sys.version_info[:2]
    for v in venvs:
        if v:
            sp = os.path.join(v, "lib", ver, "site-packages")
            if os.path.isdir(sp) and sp not in sys.path:
                sys.path.append(sp)
    for attempt in range(2):
        try:
            import bochscpu  # noqa: F401
            import bochscpu.cpu  # noqa: F401
            return sys.modules["bochscpu"]
        except ImportError as e:
            if attempt == 0 and "__isoc23" in str(e):
                shim = _shim_path()
                if not os.path.exists(shim):
                    _build_shim(shim)
                ctypes.CDLL(shim, mode=ctypes.RTLD_GLOBAL)
                for m in [m for m in sys.modules if m.startswith("bochscpu")]:
                    del sys.modules[m]
                continue
            _die("cannot import bochscpu (%s); pip install bochscpu-python" % e)
    return None


# Indices into Bochs's cpudb (bochs/cpu/cpudb.h) as compiled into the 0.4.0
# wheel, found by reading each model's CPUID brand string: 24 i7-4770,
# 26 i7-7800X, 27 i3-8121U, 28 i7-1065G7, 29 i5-1135G7, 30 Xeon w9-3475X,
# 31 Core Ultra 5 245K. The features an alias promises (REQUIRED) are
# checked against CPUID at every start, so a wheel with another table
# fails loudly rather than testing the wrong instruction set.
CPU_MODELS = {"haswell": 24, "skylake_x": 26, "cannonlake": 27, "icelake_u": 28,
              "tigerlake": 29, "sapphire_rapids": 30, "arrow_lake": 31}
# Of these, only sapphire_rapids reports AVX512_BF16 (CPUID.(7,1):EAX bit
# 5). Its vdpbf16ps and vcvtneps2bf16 compute what the SDM says; its
# vcvtne2ps2bf16 does not (0.4.0 wheel: both halves of the result come from
# the second source), so code tested here must not rely on that one.
CPU_ALIASES = {
    "avx512": "tigerlake",  # AVX-512 F/CD/BW/DQ/VL + VNNI, VBMI(2), IFMA, BITALG, VPOPCNTDQ
    "avx512bf16": "sapphire_rapids",  # the above + AVX512_BF16 (and FP16, AMX)
    "avx512-novnni": "skylake_x",  # AVX-512 F/CD/BW/DQ/VL, no VNNI
    "avx2": "arrow_lake",  # AVX2/FMA/F16C/AVX-VNNI, no AVX-512
}


def select_cpu_model(B, name):
    """Point the `cpu.model` parameter at `name` before the CPU is created.

    bochscpu exposes no API for it, but the wheel exports Bochs's C++
    symbols: bx_real_sim_c::get_param_enum ignores `this`, and the enum is
    a bx_param_num_c whose range the Rust side sized to its own, shorter,
    list of model names — so widen the range, then set."""
    so = ctypes.CDLL(B._bochscpu.__file__)
    get_enum = so._ZN13bx_real_sim_c14get_param_enumEPKcP10bx_param_c
    get_enum.restype = ctypes.c_void_p
    get_enum.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    set_range = so._ZN14bx_param_num_c9set_rangeEmm
    set_range.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
    set_val = so._ZN14bx_param_num_c3setEl
    set_val.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    get_val = so._ZN14bx_param_num_c5get64Ev
    get_val.restype = ctypes.c_int64
    get_val.argtypes = [ctypes.c_void_p]
    p = get_enum(None, b"cpu.model", None)
    if not p:
        _die("bochscpu has no cpu.model parameter")
    idx = CPU_MODELS[name]
    set_range(p, 0, 64)
    set_val(p, idx)
    if get_val(p) != idx:
        _die("could not select cpu model %s" % name)


# ---------------------------------------------------------------- guest memory

PAGE = 4096
PTE_P, PTE_W, PTE_U = 1, 2, 4
PTE_FLAGS = PTE_P | PTE_W | PTE_U
ADDR_MASK = 0x000FFFFFFFFFF000


class Memory:
    """Guest physical memory (a host reservation) plus the page tables."""

    def __init__(self, B, phys_bytes):
        self.B = B
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000)
        self.size = phys_bytes
        self.mm = mmap.mmap(-1, phys_bytes, flags=flags)
        self.view = memoryview(self.mm)
        self.host = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        self.next_gpa = 0x10000  # page 0 left unused
        self.free = []  # released physical pages (zeroed on release)
        self.inserted = set()
        self.v2p = {}  # virtual page number -> guest physical address
        self.pml4 = self.alloc_phys()

    # physical pages
    def alloc_phys(self):
        if self.free:
            return self.free.pop()
        gpa = self.next_gpa
        if gpa + PAGE > self.size:
            raise MemoryError("guest physical memory exhausted (%d MiB); raise --mem" % (self.size >> 20))
        self.next_gpa += PAGE
        return gpa

    def release_phys(self, gpa):
        self.view[gpa:gpa + PAGE] = bytes(PAGE)
        self.free.append(gpa)

    def missing_page(self, gpa):
        """Bochs touched a physical page it has no host page for."""
        page = gpa & ~(PAGE - 1)
        if page >= self.size:  # only a page-table bug of ours can get here
            sys.stderr.write("run_x86: guest touched physical %#x outside its memory\n" % gpa)
            sys.stderr.flush()
            os._exit(125)
        self.B.memory.page_insert(page, self.host + page)
        self.inserted.add(page)

    # page tables
    def _u64(self, gpa):
        return struct.unpack_from("<Q", self.mm, gpa)[0]

    def _table(self, table_gpa, index):
        """The next-level table at `index`, created on first use."""
        e = self._u64(table_gpa + 8 * index)
        if e & PTE_P:
            return e & ADDR_MASK
        t = self.alloc_phys()
        struct.pack_into("<Q", self.mm, table_gpa + 8 * index, t | PTE_FLAGS)
        return t

    def map(self, va, length):
        """Map [va, va+length) (page-rounded) to fresh zeroed pages; pages
        already mapped are kept as they are."""
        start = va & ~(PAGE - 1)
        end = (va + length + PAGE - 1) & ~(PAGE - 1)
        v = start
        while v < end:
            pdpt = self._table(self.pml4, (v >> 39) & 511)
            pd = self._table(pdpt, (v >> 30) & 511)
            pt = self._table(pd, (v >> 21) & 511)
            # fill this page table as far as the range goes
            idx = (v >> 12) & 511
            n = min(512 - idx, (end - v) >> 12)
            for i in range(n):
                vpn = (v >> 12) + i
                if vpn in self.v2p:
                    continue
                gpa = self.alloc_phys()
                self.v2p[vpn] = gpa
                struct.pack_into("<Q", self.mm, pt + 8 * (idx + i), gpa | PTE_FLAGS)
            v += n << 12

    def unmap(self, va, length):
        start = va & ~(PAGE - 1)
        end = (va + length + PAGE - 1) & ~(PAGE - 1)
        for vpn in range(start >> 12, end >> 12):
            gpa = self.v2p.pop(vpn, None)
            if gpa is None:
                continue
            v = vpn << 12
            pdpt = self._u64(self.pml4 + 8 * ((v >> 39) & 511)) & ADDR_MASK
            pd = self._u64(pdpt + 8 * ((v >> 30) & 511)) & ADDR_MASK
            pt = self._u64(pd + 8 * ((v >> 21) & 511)) & ADDR_MASK
            struct.pack_into("<Q", self.mm, pt + 8 * ((v >> 12) & 511), 0)
            self.release_phys(gpa)

    # virtual access from Python
    def read(self, va, n):
        out = bytearray()
        while n > 0:
            gpa = self.v2p.get(va >> 12)
            if gpa is None:
                raise EFault(va)
            off = va & (PAGE - 1)
            k = min(n, PAGE - off)
            out += self.view[gpa + off:gpa + off + k]
            va += k
            n -= k
        return bytes(out)

    def write(self, va, data):
        data = memoryview(bytes(data))
        pos = 0
        while pos < len(data):
            gpa = self.v2p.get(va >> 12)
            if gpa is None:
                raise EFault(va)
            off = va & (PAGE - 1)
            k = min(len(data) - pos, PAGE - off)
            self.view[gpa + off:gpa + off + k] = data[pos:pos + k]
            va += k
            pos += k

    def read_cstr(self, va, limit=1 << 16):
        out = bytearray()
        while len(out) < limit:
            gpa = self.v2p.get(va >> 12)
            if gpa is None:
                raise EFault(va)
            off = va & (PAGE - 1)
            chunk = self.view[gpa + off:gpa + PAGE]
            z = bytes(chunk).find(b"\0")
            if z >= 0:
                out += chunk[:z]
                return bytes(out)
            out += chunk
            va += PAGE - off
        raise EFault(va)


class EFault(Exception):
    pass


# ---------------------------------------------------------------- ELF loading

PT_LOAD, PT_TLS, PT_PHDR, PT_INTERP = 1, 7, 6, 3


def load_elf(mem, path):
    """Map the PT_LOAD segments. Returns (entry, phdr_va, phnum, end_of_image)."""
    with open(path, "rb") as f:
        img = f.read()
    if img[:4] != b"\x7fELF" or img[4] != 2 or img[5] != 1:
        _die("%s: not a little-endian ELF64 file" % path)
    e_type, e_machine = struct.unpack_from("<HH", img, 16)
    if e_machine != 62:
        _die("%s: not x86-64" % path)
    e_entry, e_phoff = struct.unpack_from("<QQ", img, 24)
    e_phentsize, e_phnum = struct.unpack_from("<HH", img, 54)
    phdrs = []
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + 56 > len(img):
            _die("%s: truncated program headers" % path)
        phdrs.append(struct.unpack_from("<IIQQQQQQ", img, off))
    if any(p[0] == PT_INTERP for p in phdrs):
        _die("%s: dynamically linked; build it with -static" % path)
    bias = 0x555555554000 if e_type == 3 else 0  # static-pie
    end = 0
    phdr_va = None
    for (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align) in phdrs:
        if p_type == PT_PHDR:
            phdr_va = p_vaddr + bias
        if p_type != PT_LOAD or p_memsz == 0:
            continue
        va = p_vaddr + bias
        mem.map(va, p_memsz)
        if p_filesz:
            if p_offset + p_filesz > len(img):
                _die("%s: segment outside the file" % path)
            mem.write(va, img[p_offset:p_offset + p_filesz])
        if phdr_va is None and p_offset <= e_phoff < p_offset + p_filesz:
            phdr_va = va + (e_phoff - p_offset)
        end = max(end, va + p_memsz)
    return e_entry + bias, phdr_va or 0, e_phnum, end


def symbolize(path, addr):
    """ " (function+0xoff)" for addr from the ELF's .symtab, or "" (static
    non-PIE binaries only: no load bias)."""
    try:
        with open(path, "rb") as f:
            img = f.read()
        e_shoff, = struct.unpack_from("<Q", img, 40)
        e_shentsize, e_shnum = struct.unpack_from("<HH", img, 58)
        best = None
        for i in range(e_shnum):
            sh = struct.unpack_from("<IIQQQQIIQQ", img, e_shoff + i * e_shentsize)
            if sh[1] != 2:  # SHT_SYMTAB
                continue
            strtab = struct.unpack_from("<IIQQQQIIQQ", img, e_shoff + sh[6] * e_shentsize)
            for off in range(sh[4], sh[4] + sh[5], 24):
                st_name, st_info, _, _, st_value, st_size = struct.unpack_from("<IBBHQQ", img, off)
                if st_info & 0xF == 2 and st_value <= addr < st_value + max(st_size, 1):
                    best = (st_name, st_value, strtab[4])
        if best is None:
            return ""
        name = img[best[2] + best[0]:img.index(b"\0", best[2] + best[0])].decode(errors="replace")
        return " (%s+%#x)" % (name, addr - best[1])
    except (OSError, struct.error, ValueError):
        return ""


# ---------------------------------------------------------------- layout

STUB_VA = 0x7FFFFFFFE000 - 0x100000  # syscall/entry trampolines (one page)
STACK_TOP = 0x7FFFFFFFE000
STACK_SIZE = 8 << 20
MMAP_TOP = 0x7F0000000000  # mmap grows down from here; ranges are never reused

# user / kernel selectors as Linux uses them (STAR: kernel CS 0x10, user base 0x23)
USER_CS, USER_SS, KERNEL_CS = 0x33, 0x2B, 0x10
STAR = (0x23 << 48) | (KERNEL_CS << 32)
ATTR_CODE64_DPL3 = 0xAFFB  # P, DPL3, S, exec/read/accessed, L, G
ATTR_DATA_DPL3 = 0xCFF3  # P, DPL3, S, read/write/accessed, DB, G

# errno values
EPERM, ENOENT, EBADF, EFAULT_, EINVAL, ENOMEM, ENOTTY, ENOSYS, ENODEV, ESPIPE = \
    1, 2, 9, 14, 22, 12, 25, 38, 19, 29

SIGNALS = {6: "SIGABRT", 4: "SIGILL", 8: "SIGFPE", 11: "SIGSEGV", 7: "SIGBUS", 5: "SIGTRAP"}
# CPU exception vector -> (signal, name)
EXC_SIGNAL = {0: (8, "#DE"), 1: (5, "#DB"), 3: (5, "#BP"), 4: (11, "#OF"), 5: (11, "#BR"),
              6: (4, "#UD"), 7: (4, "#NM"), 8: (11, "#DF"), 10: (11, "#TS"), 11: (7, "#NP"),
              12: (7, "#SS"), 13: (11, "#GP"), 14: (11, "#PF"), 16: (8, "#MF"),
              17: (7, "#AC"), 18: (11, "#MC"), 19: (8, "#XM")}


PROBE_NR = 0x7FFE0001  # private syscall used by the entry trampoline

# CPUID leaf 7 feature bits: (register index in (ebx, ecx, edx) of
# subleaf 0, then eax of subleaf 1; bit)
FEATURES = {"avx2": (0, 5), "avx512f": (0, 16), "avx512dq": (0, 17), "avx512ifma": (0, 21),
            "avx512cd": (0, 28), "avx512bw": (0, 30), "avx512vl": (0, 31), "avx512vbmi": (1, 1),
            "avx512vbmi2": (1, 6), "avx512vnni": (1, 11), "avx512bitalg": (1, 12),
            "avx512vpopcntdq": (1, 14), "avx512fp16": (2, 23), "amx-tile": (2, 24),
            "avx512bf16": (3, 5)}
# what each --cpu alias promises; checked against the probed CPUID
REQUIRED = {"avx512": ("avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vnni"),
            "avx512bf16": ("avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vnni",
                           "avx512bf16"),
            "avx512-novnni": ("avx512f", "avx512dq", "avx512bw", "avx512vl"),
            "avx2": ("avx2",)}


def features(leaf7):
    return [n for n, (r, b) in FEATURES.items() if leaf7[r] >> b & 1]


class Exit(Exception):
    def __init__(self, status):
        self.status = status


class Emulator:
    def __init__(self, B, binary, argv, envp, mem_bytes, trace=False, require=(), count=False):
        self.B = B
        self.trace = trace
        self.require = require
        self.count = count
        self.icount = 0
        self.mem = Memory(B, mem_bytes)
        self.sess = B.Session()
        self.sess.missing_page_handler = self.mem.missing_page
        self.cpu = self.sess.cpu
        self.syscall_pending = False
        self.leaf7 = None
        self.exception = None
        self.nsyscalls = 0
        self.unknown = {}
        self.mmap_next = MMAP_TOP

        entry, phdr, phnum, end = load_elf(self.mem, binary)
        self.brk_base = self.brk = (end + PAGE - 1) & ~(PAGE - 1)
        self.brk_mapped = self.brk
        self.binary = binary
        self._stub(entry)
        rsp = self._stack(argv, envp, entry, phdr, phnum, binary)
        self._cpu_state(rsp)

    # The trampoline page. [0x00] sysretq: the LSTAR target. [0x10] process
    # entry: reports CPUID leaf 7 (subleaf 0's ebx, ecx, edx and subleaf
    # 1's eax, in rdi, rsi, rdx, r10) through the private syscall PROBE_NR (so
    # a wheel whose model table differs fails loudly instead of silently
    # testing the wrong ISA), clears the registers it used (Linux starts a
    # process with rdx=0: no rtld_fini), loads the Linux MXCSR 0x1f80 and
    # jumps to the ELF entry. MXCSR is loaded here, not through State,
    # because bochscpu's set_state also copies the given mxcsr into
    # MXCSR_MASK, which would make ldmxcsr of any flag bit fault.
    #   mov eax,7; mov ecx,1; cpuid; mov r10d,eax;
    #   mov eax,7; xor ecx,ecx; cpuid; mov edi,ebx; mov esi,ecx;
    #   mov eax,PROBE_NR; syscall; xor eax,eax; xor ebx,ebx; xor ecx,ecx;
    #   xor edx,edx; xor esi,esi; xor edi,edi; xor r10d,r10d; xor r11d,r11d;
    #   ldmxcsr [rip+0x34]; jmp [rip+0x36]       (data at 0x80, 0x88)
    ENTRY_CODE = bytes.fromhex(
        "b807000000b9010000000fa24189c2"
        "b80700000031c90fa289df89ceb80100fe7f0f0531c031db31c931d231f631ff4531d24531db"
        "0fae1534000000ff2536000000")

    def _stub(self, entry):
        self.mem.map(STUB_VA, PAGE)
        code = bytearray(PAGE)
        code[0:3] = b"\x48\x0f\x07"  # sysretq
        code[0x10:0x10 + len(self.ENTRY_CODE)] = self.ENTRY_CODE
        struct.pack_into("<IIQ", code, 0x80, 0x1F80, 0, entry)
        self.mem.write(STUB_VA, code)
        self.entry_stub = STUB_VA + 0x10

    def _stack(self, argv, envp, entry, phdr, phnum, binary):
        lo = STACK_TOP - STACK_SIZE
        self.mem.map(lo, STACK_SIZE)
        sp = STACK_TOP

        def push_bytes(b):
            nonlocal sp
            sp -= len(b)
            self.mem.write(sp, b)
            return sp

        execfn = push_bytes(os.fsencode(binary) + b"\0")
        platform = push_bytes(b"x86_64\0")
        rnd = push_bytes(os.urandom(16))
        envp_va = [push_bytes(os.fsencode(e) + b"\0") for e in envp]
        argv_va = [push_bytes(os.fsencode(a) + b"\0") for a in argv]
        sp &= ~15
        hwcap = 0x178BFBFF  # CPUID.1:EDX of a modern Intel part
        auxv = [(3, phdr), (4, 56), (5, phnum), (6, PAGE), (7, 0), (8, 0), (9, entry),
                (11, 0), (12, 0), (13, 0), (14, 0), (16, hwcap), (17, 100), (15, platform),
                (23, 0), (25, rnd), (26, 0), (31, execfn), (51, 4096), (0, 0)]
        words = [len(argv)] + argv_va + [0] + envp_va + [0]
        for k, v in auxv:
            words += [k, v]
        if len(words) % 2:
            words.append(0)  # keep rsp 16-byte aligned at entry
        sp -= 8 * len(words)
        self.mem.write(sp, struct.pack("<%dQ" % len(words), *words))
        return sp

    def _seg(self, selector, attr, base=0):
        s = self.B.Segment()
        s.present = True
        s.selector = selector
        s.base = base
        s.limit = 0xFFFFFFFF
        s.attr = attr
        return s

    def _cpu_state(self, rsp):
        B = self.B
        st = B.State()
        B.cpu.set_long_mode(st)
        cr0 = st.cr0 | (1 << 1)  # MP
        cr0 &= ~((1 << 2) | (1 << 3))  # EM, TS
        st.cr0 = cr0
        st.cr4 = st.cr4 | (1 << 5) | (1 << 9) | (1 << 10) | (1 << 18)  # PAE OSFXSR OSXMMEXCPT OSXSAVE
        st.xcr0 = 0xE7  # x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM
        st.cr3 = self.mem.pml4
        st.efer = st.efer | 1  # SCE
        st.star = STAR
        st.lstar = STUB_VA
        st.sfmask = 0x47700  # TF DF IF IOPL NT AC cleared on syscall, as Linux
        st.rflags = 0x202
        st.rsp = rsp
        st.rip = self.entry_stub
        st.mxcsr = 0xFFBF  # see _stub
        st.mxcsr_mask = 0xFFBF
        st.fpcw = 0x37F
        st.fptw = 0xFFFF  # all x87 registers empty
        st.cs = self._seg(USER_CS, ATTR_CODE64_DPL3)
        st.ss = self._seg(USER_SS, ATTR_DATA_DPL3)
        for name in ("ds", "es", "fs", "gs"):
            setattr(st, name, self._seg(0, ATTR_DATA_DPL3))
        self.cpu.state = st

    # -------------------------------------------------------------- hooks
    def _far_branch(self, sess, cpu_id, what, new_cs, new_ip, cs, ip):
        if what == self.IS_SYSCALL:
            self.syscall_pending = True
            sess.stop()

    def _exception(self, sess, cpu_id, vector, error_code):
        if self.exception is None:
            self.exception = (vector, error_code, self.cpu.rip, self.cpu.cr2)
        sess.stop()

    def run(self):
        B = self.B
        self.IS_SYSCALL = _enum_int(B.InstructionType.IS_SYSCALL)
        hook = B.Hook()
        hook.far_branch = self._far_branch
        hook.exception = self._exception
        hook.reset = lambda sess, cpu_id, kind: sess.stop()
        if self.count:
            def count(sess, cpu_id, insn):
                self.icount += 1
            hook.after_execution = count
        while True:
            self.sess.run([hook])
            if self.exception is not None:
                return self._fatal()
            if not self.syscall_pending:
                _die("emulation stopped unexpectedly at rip=%#x" % self.cpu.rip, 125)
            self.syscall_pending = False
            try:
                self._syscall()
            except Exit as e:
                return e.status

    def _fatal(self):
        # Bochs has already advanced rip past the faulting instruction when
        # the exception hook runs (instruction-fetch faults aside), and its
        # prev_rip is not exported: report the next rip and its symbol.
        vector, err, rip, cr2 = self.exception
        sig, name = EXC_SIGNAL.get(vector, (11, "vector %d" % vector))
        msg = "run_x86: %s (%s) in the instruction before rip=%#x%s" % (
            SIGNALS.get(sig, "signal %d" % sig), name, rip, symbolize(self.binary, rip))
        if vector == 14:
            msg += " address=%#x" % cr2
        if vector in (13, 14):
            msg += " error=%#x" % err
        sys.stderr.write(msg + "\n")
        return 128 + sig

    # -------------------------------------------------------------- syscalls
    def _syscall(self):
        c = self.cpu
        nr = c.rax
        args = (c.rdi, c.rsi, c.rdx, c.r10, c.r8, c.r9)
        if nr == PROBE_NR and c.rip == STUB_VA and self.leaf7 is None:
            self.leaf7 = args[:4]  # CPUID.(7,0) ebx, ecx, edx; CPUID.(7,1) eax
            have = features(self.leaf7)
            missing = [f for f in self.require if f not in have]
            if missing:
                _die("the emulated CPU lacks %s (CPUID.7: %s); bochscpu's model table "
                     "differs from CPU_MODELS" % (" ".join(missing), " ".join(have)))
            return
        self.nsyscalls += 1
        fn = SYSCALLS.get(nr)
        if fn is None:
            if nr not in self.unknown:
                sys.stderr.write("run_x86: unsupported syscall %d -> ENOSYS\n" % nr)
            self.unknown[nr] = self.unknown.get(nr, 0) + 1
            ret = -ENOSYS
        else:
            try:
                ret = fn(self, *args)
            except EFault:
                ret = -EFAULT_
            except MemoryError:
                ret = -ENOMEM
        if self.trace:
            sys.stderr.write("run_x86: syscall %s(%s) = %d\n" % (
                getattr(fn, "__name__", str(nr)).lstrip("_"), ", ".join("%#x" % a for a in args[:3]), ret))
        c.rax = ret & 0xFFFFFFFFFFFFFFFF

    def _sys_read(self, fd, buf, n, *_):
        if fd == 0:
            return 0  # stdin is empty
        return -EBADF

    def _sys_write(self, fd, buf, n, *_):
        if fd not in (1, 2):
            return -EBADF
        data = self.mem.read(buf, n)
        out = sys.stdout.buffer if fd == 1 else sys.stderr.buffer
        out.write(data)
        out.flush()
        return n

    def _sys_writev(self, fd, iov, cnt, *_):
        total = 0
        for i in range(cnt):
            base, ln = struct.unpack("<QQ", self.mem.read(iov + 16 * i, 16))
            r = self._sys_write(fd, base, ln)
            if r < 0:
                return r
            total += r
        return total

    def _sys_close(self, fd, *_):
        return 0 if fd in (0, 1, 2) else -EBADF

    def _sys_fstat(self, fd, buf, *_):
        if fd not in (0, 1, 2):
            return -EBADF
        st = bytearray(144)
        struct.pack_into("<QQQII", st, 0, 0x16, fd + 1, 1, 0o20620, 0)  # char device
        struct.pack_into("<Q", st, 56, 4096)  # st_blksize
        self.mem.write(buf, st)
        return 0

    def _sys_newfstatat(self, dirfd, path, buf, flags, *_):
        if flags & 0x1000 and self.mem.read_cstr(path) == b"":  # AT_EMPTY_PATH
            return self._sys_fstat(dirfd, buf)
        return -ENOENT

    def _sys_lseek(self, fd, *_):
        return -ESPIPE if fd in (0, 1, 2) else -EBADF

    def _sys_ioctl(self, fd, *_):
        return -ENOTTY if fd in (0, 1, 2) else -EBADF

    def _sys_open(self, *_):
        return -ENOENT

    def _sys_brk(self, addr, *_):
        if addr == 0 or addr < self.brk_base:
            return self.brk
        new_end = (addr + PAGE - 1) & ~(PAGE - 1)
        if new_end > self.brk_mapped:
            self.mem.map(self.brk_mapped, new_end - self.brk_mapped)
        elif new_end < self.brk_mapped:
            # glibc's calloc trusts memory fresh from brk to be zero, so
            # pages given back must come back zeroed, as on Linux
            self.mem.unmap(new_end, self.brk_mapped - new_end)
            self._flush_tlb()
        self.brk_mapped = new_end
        self.brk = addr
        return self.brk

    def _sys_mmap(self, addr, length, prot, flags, fd, off):
        MAP_FIXED, MAP_ANON = 0x10, 0x20
        if length == 0:
            return -EINVAL
        if not flags & MAP_ANON:
            return -ENODEV  # file mappings are not emulated
        length = (length + PAGE - 1) & ~(PAGE - 1)
        if flags & MAP_FIXED or flags & 0x100000:  # MAP_FIXED(_NOREPLACE)
            if addr & (PAGE - 1):
                return -EINVAL
            self.mem.unmap(addr, length)
            self._flush_tlb()
            va = addr
        else:
            self.mmap_next -= length + PAGE  # one guard page between mappings
            va = self.mmap_next
        self.mem.map(va, length)
        return va

    def _sys_munmap(self, addr, length, *_):
        if addr & (PAGE - 1):
            return -EINVAL
        self.mem.unmap(addr, length)
        self._flush_tlb()
        return 0

    def _sys_mremap(self, old, old_len, new_len, flags, new_addr, *_):
        MREMAP_MAYMOVE = 1
        old_len = (old_len + PAGE - 1) & ~(PAGE - 1)
        new_len = (new_len + PAGE - 1) & ~(PAGE - 1)
        if new_len <= old_len:
            self.mem.unmap(old + new_len, old_len - new_len)
            self._flush_tlb()
            return old
        if not flags & MREMAP_MAYMOVE:
            return -ENOMEM
        va = self._sys_mmap(0, new_len, 3, 0x22, -1, 0)
        # copy page by page through the physical view
        for i in range(old_len >> 12):
            src = self.mem.v2p.get((old >> 12) + i)
            if src is not None:
                dst = self.mem.v2p[(va >> 12) + i]
                self.mem.view[dst:dst + PAGE] = self.mem.view[src:src + PAGE]
        self._sys_munmap(old, old_len)
        return va

    def _flush_tlb(self):
        self.cpu.set_mode()  # bochscpu: TLB_flush() + mode re-evaluation

    def _sys_ok(self, *_):
        return 0

    def _sys_arch_prctl(self, code, addr, *_):
        ARCH_SET_FS, ARCH_GET_FS = 0x1002, 0x1003
        if code == ARCH_SET_FS:
            self.cpu.fs = self._seg(0, ATTR_DATA_DPL3, addr)
            return 0
        if code == ARCH_GET_FS:
            self.mem.write(addr, struct.pack("<Q", self.cpu.fs.base))
            return 0
        return -EINVAL

    def _sys_set_tid_address(self, *_):
        return 1000

    def _sys_getpid(self, *_):
        return 1000

    def _sys_exit(self, status, *_):
        raise Exit(status & 0xFF)

    def _sys_kill(self, pid, sig, *_):
        sys.stderr.write("run_x86: killed by %s\n" % SIGNALS.get(sig, "signal %d" % sig))
        raise Exit(128 + sig)

    def _sys_tgkill(self, tgid, tid, sig, *_):
        return self._sys_kill(tid, sig)

    def _sys_uname(self, buf, *_):
        fields = [b"Linux", b"emu", b"6.1.0", b"#1 SMP", b"x86_64", b"(none)"]
        self.mem.write(buf, b"".join(f.ljust(65, b"\0") for f in fields))
        return 0

    def _sys_readlink(self, path, buf, size, *_):
        if self.mem.read_cstr(path) == b"/proc/self/exe":
            target = os.fsencode(os.path.abspath(self.binary))[:size]
            self.mem.write(buf, target)
            return len(target)
        return -ENOENT

    def _sys_readlinkat(self, dirfd, path, buf, size, *_):
        return self._sys_readlink(path, buf, size)

    def _sys_getrandom(self, buf, n, *_):
        self.mem.write(buf, os.urandom(n))
        return n

    def _sys_clock_gettime(self, clk, ts, *_):
        t = time.clock_gettime_ns(clk if clk in (0, 1, 2, 3, 4, 7) else 1)
        self.mem.write(ts, struct.pack("<qq", t // 1000000000, t % 1000000000))
        return 0

    def _sys_clock_getres(self, clk, ts, *_):
        if ts:
            self.mem.write(ts, struct.pack("<qq", 0, 1))
        return 0

    def _sys_gettimeofday(self, tv, *_):
        if tv:
            t = time.time_ns()
            self.mem.write(tv, struct.pack("<qq", t // 1000000000, (t // 1000) % 1000000))
        return 0

    def _sys_time(self, tloc, *_):
        t = int(time.time())
        if tloc:
            self.mem.write(tloc, struct.pack("<q", t))
        return t

    def _sys_prlimit64(self, pid, res, new, old, *_):
        if old:
            inf = 0xFFFFFFFFFFFFFFFF
            lim = (8 << 20, inf) if res == 3 else (inf, inf)  # RLIMIT_STACK
            self.mem.write(old, struct.pack("<QQ", *lim))
        return 0

    def _sys_getrlimit(self, res, old, *_):
        return self._sys_prlimit64(0, res, 0, old)

    def _sys_futex(self, uaddr, op, *_):
        cmd = op & 0x7F
        if cmd == 1:  # FUTEX_WAKE: nobody is waiting in a single thread
            return 0
        return -EINVAL if cmd != 0 else -11  # a wait would block forever: EAGAIN

    def _sys_sched_getaffinity(self, pid, size, mask, *_):
        if size < 8:
            return -EINVAL
        self.mem.write(mask, struct.pack("<Q", 1))
        return 8

    def _sys_rseq(self, *_):
        return -ENOSYS

    def _sys_ids(self, *_):
        return 0


def _enum_int(e):
    try:
        return int(e)
    except TypeError:
        return e.value


SYSCALLS = {
    0: Emulator._sys_read, 1: Emulator._sys_write, 2: Emulator._sys_open, 3: Emulator._sys_close,
    4: Emulator._sys_open,  # stat(path): nothing exists
    5: Emulator._sys_fstat, 6: Emulator._sys_open, 8: Emulator._sys_lseek, 9: Emulator._sys_mmap,
    10: Emulator._sys_ok,  # mprotect: protection is not emulated
    11: Emulator._sys_munmap, 12: Emulator._sys_brk,
    13: Emulator._sys_ok, 14: Emulator._sys_ok,  # rt_sigaction, rt_sigprocmask
    16: Emulator._sys_ioctl, 20: Emulator._sys_writev, 21: Emulator._sys_open,  # access
    24: Emulator._sys_ok,  # sched_yield
    25: Emulator._sys_mremap, 28: Emulator._sys_ok,  # madvise
    39: Emulator._sys_getpid, 60: Emulator._sys_exit, 62: Emulator._sys_kill,
    63: Emulator._sys_uname, 89: Emulator._sys_readlink, 96: Emulator._sys_gettimeofday,
    97: Emulator._sys_getrlimit, 102: Emulator._sys_ids, 104: Emulator._sys_ids,
    107: Emulator._sys_ids, 108: Emulator._sys_ids, 131: Emulator._sys_ok,  # sigaltstack
    158: Emulator._sys_arch_prctl, 186: Emulator._sys_getpid, 200: Emulator._sys_kill,
    201: Emulator._sys_time, 202: Emulator._sys_futex, 204: Emulator._sys_sched_getaffinity,
    218: Emulator._sys_set_tid_address, 228: Emulator._sys_clock_gettime,
    229: Emulator._sys_clock_getres, 231: Emulator._sys_exit, 234: Emulator._sys_tgkill,
    257: Emulator._sys_open, 262: Emulator._sys_newfstatat, 267: Emulator._sys_readlinkat,
    273: Emulator._sys_ok,  # set_robust_list
    302: Emulator._sys_prlimit64, 318: Emulator._sys_getrandom, 334: Emulator._sys_rseq,
}


def main(argv):
    cpu = "avx512"
    stats = trace = count = check = False
    mem_mb = int(os.environ.get("TL_EMU_MEM_MB", "4096"))
    i = 1
    while i < len(argv) and argv[i].startswith("--"):
        a = argv[i]
        if a == "--cpu" and i + 1 < len(argv):
            cpu = argv[i + 1]
            i += 2
            continue
        if a.startswith("--cpu="):
            cpu = a.split("=", 1)[1]
        elif a == "--stats":
            stats = True
        elif a == "--check":
            check = True
        elif a == "--count-instructions":
            count = stats = True
        elif a == "--trace-syscalls":
            trace = True
        elif a.startswith("--mem-mb="):
            mem_mb = int(a.split("=", 1)[1])
        elif a == "--":
            i += 1
            break
        else:
            _die("unknown option %s" % a)
        i += 1
    if i >= len(argv) and not check:
        sys.stderr.write(__doc__)
        return 125
    model = CPU_ALIASES.get(cpu, cpu)
    if model not in CPU_MODELS:
        _die("unknown --cpu %s (choose from %s)" % (cpu, ", ".join(sorted(set(CPU_MODELS) | set(CPU_ALIASES)))))
    B = import_bochscpu()
    import bochscpu.memory  # noqa: F401
    select_cpu_model(B, model)
    if check:  # bochscpu loads and a CPU of this model can be created
        B.Session()
        return 0
    binary = argv[i]
    if not os.path.isfile(binary):
        _die("%s: no such file" % binary)
    env = ["%s=%s" % (k, v) for k, v in os.environ.items()
           if k.startswith(("TL_", "LANG", "LC_")) or k in ("PATH", "HOME")]
    t0 = time.perf_counter()
    emu = Emulator(B, binary, argv[i:], env, mem_mb << 20, trace=trace,
                   require=REQUIRED.get(cpu, ()), count=count)
    status = emu.run()
    dt = time.perf_counter() - t0
    if stats:
        line = "run_x86: cpu %s [%s]; %.2fs wall, %d syscalls, %.1f MiB guest memory touched" % (
            model, " ".join(f for f in features(emu.leaf7 or (0, 0, 0, 0)) if f.startswith("avx512")),
            dt, emu.nsyscalls, len(emu.mem.inserted) * PAGE / 2**20)
        if count:
            line += ", %d instructions (%.2f M/s while counting)" % (emu.icount, emu.icount / dt / 1e6)
        sys.stderr.write(line + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
