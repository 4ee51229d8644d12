/* Relocating a function's first instructions into a trampoline.
 *
 * The patch at a probed entry point is `jmp rel32` (5 bytes) to agent
 * code; the instructions it covers move to a trampoline at another
 * address, followed by a jump back.  Every displaced instruction must do
 * exactly what it did at its original address, and nothing else may
 * depend on the bytes that the patch replaced.  What follows is how each
 * kind of instruction is treated, in the manner of the kernel's
 * arch/x86/kernel/uprobes.c.
 *
 *   instruction                          treatment
 *   -----------------------------------  ---------------------------------
 *   no rip dependence (push, mov, sub,   copied unchanged
 *     test, cmp, lea r/m, nop, ...)
 *   RIP-relative memory operand          disp32 adjusted so the absolute
 *     (mov/cmp/lea/jmp* x(%rip), ...)      address is unchanged; refused if
 *                                          the new disp does not fit in 32
 *                                          bits (no other encoding exists)
 *   jmp rel8/rel32 (EB, E9)              E9 rel32 to the same target
 *   jcc rel8/rel32 (7x, 0F 8x)           0F 8x rel32 to the same target
 *   call rel32 (E8)                      E8 rel32: the return address is
 *                                          the next relocated instruction,
 *                                          which continues correctly
 *   (any of the three out of rel32       absolute forms: jmp *0(%rip) +
 *     reach of the trampoline)             abs64; j!cc over one; call
 *                                          *2(%rip), jmp +8, abs64
 *   jmp/jcc back to the entry itself     retargeted to the trampoline's
 *                                          start: a loop, and re-entering
 *                                          through the patch would count a
 *                                          second call (a recursive call
 *                                          rel32 does go through the patch)
 *   ret, jmp (any form)                  copied or rewritten as above; end
 *                                          of straight-line code, so no
 *                                          jump back follows.  If it ends
 *                                          before min_len bytes, the rest
 *                                          up to min_len must be past the
 *                                          function's end and be padding
 *                                          (nop forms, int3)
 *
 * Refused, and why:
 *   loop, loope, loopne, jrcxz, jecxz    rel8 only: no rel32 form to widen
 *                                          to, and rewriting them as
 *                                          dec/test sequences would change
 *                                          flags
 *   66/67-prefixed relative branches     Intel ignores 66 on near branches,
 *                                          AMD truncates rip to 16 bits; no
 *                                          rewrite is right on both
 *   EIP-relative memory (67 + rip)       the address wraps at 4 GiB of the
 *                                          original rip; not reproducible
 *   other relative operands              no way to re-express them
 *   syscall, sysenter                    rcx receives the trampoline's rip,
 *                                          and a thread blocked in a system
 *                                          call would pin the trampoline
 *   int, int1, int3, into                the handler (a debugger, or ours)
 *                                          identifies the trap by its rip
 *   ud0, ud1, ud2                        faults on purpose; the SIGILL
 *                                          would report the trampoline
 *   xbegin                               a transaction begun here would run
 *                                          on through the agent's hooks,
 *                                          whose traps abort it
 *   iret, sysret and privileged insns    not function prologue material;
 *     (ZYDIS_ATTRIB_IS_PRIVILEGED)         never guess at them
 *   undecodable bytes                    cannot know their length
 *   more than HD_RELOC_MAX_INSN          the offset tables are that long;
 *     instructions or 96 bytes of          no real prologue comes near
 *     trampoline
 *
 * Whole-function checks (hd_reloc_build's body argument):
 *   A direct branch anywhere in the function to an address strictly inside
 *   (src, src + displaced) would land in the middle of the patch: refused.
 *   The function is decoded linearly from src (compilers put no data in
 *   x86-64 functions).  If decoding fails before the end, the rest is not
 *   given up on: every byte position of the undecodable tail is read as
 *   if it began a direct branch (7x, EB, E0-E3 rel8; E8, E9, 0F 8x, C7 F8
 *   rel32 or rel16), and the function is refused only if one of those
 *   would land inside the range.  Any real branch in the tail begins at
 *   one of those positions, whatever the instruction boundaries, so
 *   finding none proves safety.  Indirect jumps (jump tables) are not
 *   followed: their targets are case labels after a dispatch, which a
 *   compiler does not place among the entry's first instructions.  A
 *   branch from another function into the range cannot be seen here;
 *   x86-64 code enters functions at their symbol.
 *   The displaced range must lie inside the function (except for the
 *   padding after an early ret/jmp): the next function may be entered at
 *   its symbol at any time.
 */
#include <Zydis/Zydis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tracer/reloc.h"

struct builder {
	ZydisDecoder dec;
	ZydisFormatter fmt;
	uint64_t src, dst;
	struct hd_reloc *r;
	bool ended; /* a ret or jmp was displaced: no jump back */
	char text[HD_RELOC_MAX_INSN * 96]; /* all of r->text, untruncated */
};

HD_PRINTF(2, 3)
static int refuse(struct hd_reloc *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return -HD_EINVAL;
}

static const char *mnem(const ZydisDecodedInstruction *in)
{
	const char *s = ZydisMnemonicGetString(in->mnemonic);

	return s ? s : "?";
}

static bool fits32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

/* rel32 for an instruction at `at`, `len` bytes long, reaching `to`. */
static int64_t rel_from(uint64_t at, size_t len, uint64_t to)
{
	return (int64_t)(to - (at + len)); /* two's complement wrap */
}

static void put32(uint8_t *p, int32_t v)
{
	memcpy(p, &v, 4); /* x86 is little-endian */
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Why an instruction may not be displaced at all, or NULL. */
static const char *refusal(const ZydisDecodedInstruction *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_LOOP:
	case ZYDIS_MNEMONIC_LOOPE:
	case ZYDIS_MNEMONIC_LOOPNE:
	case ZYDIS_MNEMONIC_JRCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
	case ZYDIS_MNEMONIC_JCXZ:
		return "rel8 with no rel32 form";
	case ZYDIS_MNEMONIC_SYSCALL:
	case ZYDIS_MNEMONIC_SYSENTER:
		return "system call from the trampoline";
	case ZYDIS_MNEMONIC_INT:
	case ZYDIS_MNEMONIC_INT1:
	case ZYDIS_MNEMONIC_INT3:
	case ZYDIS_MNEMONIC_INTO:
		return "trap identified by its address";
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
		return "deliberate fault";
	case ZYDIS_MNEMONIC_XBEGIN:
		return "transaction would span the agent";
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ:
	case ZYDIS_MNEMONIC_SYSRET:
		return "return from interrupt or system call";
	default:
		break;
	}
	if (in->attributes & ZYDIS_ATTRIB_IS_PRIVILEGED)
		return "privileged";
	return NULL;
}

static int room(struct builder *b, size_t n, size_t off)
{
	if (b->r->len + n > sizeof(b->r->code))
		return refuse(b->r, "trampoline exceeds %zu bytes at +%zu",
			      sizeof(b->r->code), off);
	return 0;
}

enum branch { BR_JMP, BR_JCC, BR_CALL };

/* A direct branch to `to`, written at the end of the trampoline: rel32
 * when it reaches, else an absolute form through an 8-byte literal. */
static int emit_branch(struct builder *b, enum branch kind, unsigned cc,
		       uint64_t to, size_t off)
{
	struct hd_reloc *r = b->r;
	uint64_t at = b->dst + r->len;
	size_t n = kind == BR_JCC ? 6 : 5;
	int64_t rel = rel_from(at, n, to);
	uint8_t *p = r->code + r->len;
	int err;

	if (fits32(rel)) {
		if ((err = room(b, n, off)))
			return err;
		if (kind == BR_JCC) {
			*p++ = 0x0f;
			*p++ = (uint8_t)(0x80 | cc);
		} else {
			*p++ = kind == BR_JMP ? 0xe9 : 0xe8;
		}
		put32(p, (int32_t)rel);
		r->len += n;
		return 0;
	}
	/* jmp *0(%rip); .quad to                                (14 bytes)
	 * j!cc .+16; jmp *0(%rip); .quad to                     (16 bytes)
	 * call *2(%rip); jmp .+10; .quad to -- returns onto the short jmp,
	 * which steps over the literal                          (16 bytes) */
	n = kind == BR_JMP ? 14 : 16;
	if ((err = room(b, n, off)))
		return err;
	if (kind == BR_JCC) {
		*p++ = (uint8_t)(0x70 | (cc ^ 1)); /* cc^1 inverts it */
		*p++ = 14;
	}
	if (kind == BR_CALL) {
		memcpy(p, "\xff\x15\x02\x00\x00\x00\xeb\x08", 8);
		p += 8;
	} else {
		memcpy(p, "\xff\x25\x00\x00\x00\x00", 6);
		p += 6;
	}
	put64(p, to);
	r->len += n;
	return 0;
}

/* jmp/jcc/call with a relative immediate: re-encoded, never copied, so
 * rel8 forms widen and prefixes (branch hints, bnd, rex) drop away. */
static int relocate_branch(struct builder *b,
			   const ZydisDecodedInstruction *in,
			   const ZydisDecodedOperand *op, size_t off)
{
	uint64_t at = b->src + off, to;
	uint8_t opc = in->opcode;
	bool map0 = in->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT;
	bool map0f = in->opcode_map == ZYDIS_OPCODE_MAP_0F;
	enum branch kind;

	if (in->attributes &
	    (ZYDIS_ATTRIB_HAS_OPERANDSIZE | ZYDIS_ATTRIB_HAS_ADDRESSSIZE))
		return refuse(b->r, "%s at +%zu: 66/67 prefix on a relative "
			      "branch", mnem(in), off);
	if (map0 && (opc == 0xeb || opc == 0xe9))
		kind = BR_JMP;
	else if (map0 && opc == 0xe8)
		kind = BR_CALL;
	else if ((map0 && (opc & 0xf0) == 0x70) ||
		 (map0f && (opc & 0xf0) == 0x80))
		kind = BR_JCC;
	else
		return refuse(b->r, "%s at +%zu: relative operand cannot be "
			      "relocated", mnem(in), off);
	if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(in, op, at, &to)))
		return refuse(b->r, "%s at +%zu: no target", mnem(in), off);
	if (to == b->src && kind != BR_CALL)
		to = b->dst; /* see the table: a loop back to the entry */
	return emit_branch(b, kind, opc & 0x0f, to, off);
}

/* An instruction with a RIP-relative memory operand: copied with its
 * disp32 rewritten for the new rip.  The displacement is always disp32
 * for rip-relative addressing, in every encoding (legacy, VEX, EVEX). */
static int relocate_riprel(struct builder *b,
			   const ZydisDecodedInstruction *in,
			   const uint8_t *bytes, size_t off)
{
	struct hd_reloc *r = b->r;
	uint64_t to = b->src + off + in->length + (uint64_t)in->raw.disp.value;
	int64_t disp = rel_from(b->dst + r->len, in->length, to);
	int err;

	if (in->raw.disp.size != 32)
		return refuse(r, "%s at +%zu: unexpected rip-relative "
			      "encoding", mnem(in), off);
	if (!fits32(disp))
		return refuse(r, "%s at +%zu: rip-relative operand 0x%llx out "
			      "of reach of the trampoline", mnem(in), off,
			      (unsigned long long)to);
	if ((err = room(b, in->length, off)))
		return err;
	memcpy(r->code + r->len, bytes, in->length);
	put32(r->code + r->len + in->raw.disp.offset, (int32_t)disp);
	r->len += in->length;
	return 0;
}

/* Writes the relocated form of the instruction at src+off. */
static int relocate(struct builder *b, const ZydisDecodedInstruction *in,
		    const ZydisDecodedOperand *ops, const uint8_t *bytes,
		    size_t off)
{
	const char *no = refusal(in);
	int err;

	if (no)
		return refuse(b->r, "%s at +%zu cannot be relocated: %s",
			      mnem(in), off, no);
	for (unsigned i = 0; i < in->operand_count; i++) {
		const ZydisDecodedOperand *op = &ops[i];

		if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
		    op->imm.is_relative)
			return relocate_branch(b, in, op, off);
		if (op->type != ZYDIS_OPERAND_TYPE_MEMORY)
			continue;
		if (op->mem.base == ZYDIS_REGISTER_EIP)
			return refuse(b->r, "%s at +%zu: eip-relative operand",
				      mnem(in), off);
		if (op->mem.base == ZYDIS_REGISTER_RIP)
			return relocate_riprel(b, in, bytes, off);
	}
	if (in->attributes & ZYDIS_ATTRIB_IS_RELATIVE)
		return refuse(b->r, "%s at +%zu: relative operand cannot be "
			      "relocated", mnem(in), off);
	if ((err = room(b, in->length, off)))
		return err;
	memcpy(b->r->code + b->r->len, bytes, in->length);
	b->r->len += in->length;
	return 0;
}

/* Appends the instruction's disassembly to the builder's text. */
static void describe(struct builder *b, const ZydisDecodedInstruction *in,
		     const ZydisDecodedOperand *ops, uint64_t at)
{
	char one[96];
	size_t used = strlen(b->text);

	if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&b->fmt, in, ops,
			  in->operand_count_visible, one, sizeof(one), at,
			  NULL)))
		snprintf(one, sizeof(one), "(%s)", mnem(in));
	snprintf(b->text + used, sizeof(b->text) - used, "%s%s",
		 used ? "; " : "", one);
}

/* r->text from the builder's: whole instructions, then "; ..." if they
 * do not all fit. */
static void finish_text(struct builder *b)
{
	char *t = b->r->text;
	size_t cap = sizeof(b->r->text), cut;

	if (strlen(b->text) < cap) {
		strcpy(t, b->text);
		return;
	}
	memcpy(t, b->text, cap - 1);
	t[cap - 1] = 0;
	for (cut = cap - 6; cut && strncmp(t + cut, "; ", 2) != 0; cut--)
		;
	strcpy(t + cut, cut ? "; ..." : "...");
}

static bool is_ending(const ZydisDecodedInstruction *in)
{
	return in->mnemonic == ZYDIS_MNEMONIC_RET ||
	       in->mnemonic == ZYDIS_MNEMONIC_JMP;
}

/* Relocates whole instructions until min_len bytes are covered or the
 * straight-line code ends; returns the bytes covered in *off. */
static int displace(struct builder *b, const uint8_t *code, size_t codelen,
		    size_t min_len, size_t *offp)
{
	struct hd_reloc *r = b->r;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	size_t off = 0;
	int err;

	while (off < min_len) {
		if (r->ninsn == HD_RELOC_MAX_INSN)
			return refuse(r, "more than %d instructions in %zu "
				      "bytes", HD_RELOC_MAX_INSN, min_len);
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&b->dec, code + off,
				  codelen - off, &in, ops)))
			return refuse(r, "undecodable bytes at +%zu", off);
		r->src_off[r->ninsn] = (uint8_t)off;
		r->dst_off[r->ninsn] = (uint8_t)r->len;
		if ((err = relocate(b, &in, ops, code + off, off)))
			return err;
		describe(b, &in, ops, b->src + off);
		r->ninsn++;
		off += in.length;
		if (is_ending(&in)) {
			b->ended = true;
			break;
		}
	}
	*offp = off;
	return 0;
}

/* After an early ret/jmp at the end of the function, the patch may only
 * cover padding: whole nop or int3 instructions up to min_len. */
static int displace_padding(struct builder *b, const uint8_t *code,
			    size_t codelen, size_t min_len, size_t bodylen,
			    size_t *offp)
{
	ZydisDecodedInstruction in;
	size_t off = *offp;

	if (!bodylen)
		return refuse(b->r, "function ends at +%zu, before %zu bytes, "
			      "and its size is unknown", off, min_len);
	if (off < bodylen)
		return refuse(b->r, "straight-line code ends at +%zu, before "
			      "%zu bytes, inside the function", off, min_len);
	while (off < min_len) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&b->dec, NULL,
				  code + off, codelen - off, &in)) ||
		    (in.mnemonic != ZYDIS_MNEMONIC_NOP &&
		     in.mnemonic != ZYDIS_MNEMONIC_INT3))
			return refuse(b->r, "function ends at +%zu, before %zu "
				      "bytes, and +%zu is not padding",
				      *offp, min_len, off);
		off += in.length;
	}
	*offp = off;
	return 0;
}

/* Could bytes p[0..n) at address `at`, read from any byte position as a
 * direct branch, land strictly inside (lo, hi)?  Returns the position of
 * the first that could, or -1. */
static long scan_tail(const uint8_t *p, size_t n, uint64_t at, uint64_t lo,
		      uint64_t hi)
{
	for (size_t j = 0; j < n; j++) {
		size_t opl = 0;     /* opcode bytes before the rel */
		unsigned widths = 0; /* rel sizes to try: 1, 2 and 4 bytes */
		uint8_t c = p[j];

		if ((c & 0xf0) == 0x70 || c == 0xeb || (c >= 0xe0 && c <= 0xe3))
			opl = 1, widths = 1;
		else if (c == 0xe8 || c == 0xe9)
			opl = 1, widths = 2 | 4;
		else if (j + 1 < n && ((c == 0x0f && (p[j + 1] & 0xf0) == 0x80) ||
				       (c == 0xc7 && p[j + 1] == 0xf8)))
			opl = 2, widths = 2 | 4;
		for (unsigned w = 1; w <= 4; w <<= 1) {
			size_t end = j + opl + w;
			int64_t rel;
			uint64_t to;

			if (!(widths & w) || end > n)
				continue;
			if (w == 1)
				rel = (int8_t)p[j + opl];
			else if (w == 2)
				rel = (int16_t)(p[j + opl] | p[j + opl + 1] << 8);
			else
				rel = (int32_t)((uint32_t)p[j + opl] |
						(uint32_t)p[j + opl + 1] << 8 |
						(uint32_t)p[j + opl + 2] << 16 |
						(uint32_t)p[j + opl + 3] << 24);
			to = at + end + (uint64_t)rel;
			if (to > lo && to < hi)
				return (long)j;
		}
	}
	return -1;
}

/* Refuses if a direct branch in the function lands strictly inside the
 * displaced range (see the table). */
static int check_body(struct builder *b, const uint8_t *body,
		      size_t bodylen, size_t displaced)
{
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	uint64_t lo = b->src, hi = b->src + displaced, to;
	size_t off = 0;
	long j;

	while (off < bodylen) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&b->dec, body + off,
				  bodylen - off, &in, ops)))
			break;
		for (unsigned i = 0; i < in.operand_count_visible; i++) {
			if (ops[i].type != ZYDIS_OPERAND_TYPE_IMMEDIATE ||
			    !ops[i].imm.is_relative ||
			    !ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&in, &ops[i],
					  lo + off, &to)))
				continue;
			if (to > lo && to < hi)
				return refuse(b->r, "%s at +%zu branches to "
					      "+%llu, inside the displaced "
					      "bytes", mnem(&in), off,
					      (unsigned long long)(to - lo));
		}
		off += in.length;
	}
	if (off >= bodylen)
		return 0;
	j = scan_tail(body + off, bodylen - off, lo + off, lo, hi);
	if (j >= 0)
		return refuse(b->r, "undecodable bytes at +%zu; a branch at "
			      "+%zu may land inside the displaced bytes", off,
			      off + (size_t)j);
	return 0;
}

static int emit_jmp_back(struct builder *b, size_t displaced)
{
	struct hd_reloc *r = b->r;
	size_t at = r->len;
	int err;

	if ((err = emit_branch(b, BR_JMP, 0, b->src + displaced, displaced)))
		return err;
	r->jmp_back = at;
	return 0;
}

int hd_reloc_build(const uint8_t *code, size_t codelen, uint64_t src,
		   uint64_t dst, size_t min_len, const uint8_t *body,
		   size_t bodylen, struct hd_reloc *r)
{
	struct builder b = {.src = src, .dst = dst, .r = r};
	size_t off = 0;
	int err;

	memset(r, 0, sizeof(*r));
	if (!code || !min_len || min_len > sizeof(r->code))
		return refuse(r, "invalid patch length %zu", min_len);
	if (codelen < min_len)
		return refuse(r, "only %zu bytes of code for a %zu-byte patch",
			      codelen, min_len);
	if (!body)
		bodylen = 0;
	if (!ZYAN_SUCCESS(ZydisDecoderInit(&b.dec, ZYDIS_MACHINE_MODE_LONG_64,
					   ZYDIS_STACK_WIDTH_64)) ||
	    !ZYAN_SUCCESS(ZydisFormatterInit(&b.fmt, ZYDIS_FORMATTER_STYLE_ATT)))
		return refuse(r, "decoder initialisation failed");
	/* As objdump and gdb print: 0x10(%rip), $0x0, lowercase hex. */
	ZydisFormatterSetProperty(&b.fmt, ZYDIS_FORMATTER_PROP_FORCE_RELATIVE_RIPREL,
				  ZYAN_TRUE);
	ZydisFormatterSetProperty(&b.fmt, ZYDIS_FORMATTER_PROP_HEX_UPPERCASE,
				  ZYAN_FALSE);
	ZydisFormatterSetProperty(&b.fmt, ZYDIS_FORMATTER_PROP_ADDR_PADDING_ABSOLUTE,
				  ZYDIS_PADDING_DISABLED);
	ZydisFormatterSetProperty(&b.fmt, ZYDIS_FORMATTER_PROP_IMM_PADDING,
				  ZYDIS_PADDING_DISABLED);

	if ((err = displace(&b, code, codelen, min_len, &off)))
		return err;
	if (off < min_len) {
		if ((err = displace_padding(&b, code, codelen, min_len, bodylen,
					    &off)))
			return err;
	} else if (bodylen && off > bodylen) {
		return refuse(r, "the function is %zu bytes, fewer than the %zu "
			      "displaced", bodylen, off);
	}
	r->displaced = off;
	/* Without the function's size, check at least the bytes at hand. */
	err = bodylen ? check_body(&b, body, bodylen, off)
		      : check_body(&b, code, codelen, off);
	if (err)
		return err;
	if (!b.ended && (err = emit_jmp_back(&b, off)))
		return err;
	finish_text(&b);
	return 0;
}

int hd_reloc_jmp5(uint8_t out[HD_RELOC_JMP5_LEN], uint64_t from, uint64_t to)
{
	int64_t rel = rel_from(from, HD_RELOC_JMP5_LEN, to);

	if (!fits32(rel))
		return -HD_EINVAL;
	out[0] = 0xe9;
	put32(out + 1, (int32_t)rel);
	return 0;
}

uint64_t hd_reloc_to_original(const struct hd_reloc *r, uint64_t src,
			      uint64_t dst, uint64_t addr)
{
	for (int i = 0; i < r->ninsn && i < HD_RELOC_MAX_INSN; i++)
		if (addr == dst + r->dst_off[i])
			return src + r->src_off[i];
	if (r->jmp_back && addr == dst + r->jmp_back)
		return src + r->displaced;
	return 0;
}
