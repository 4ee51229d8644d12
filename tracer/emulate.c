/* Emulating the instruction under a breakpoint.
 *
 * A breakpoint is never removed to step over it: with other threads
 * running that loses their calls and races.  Instead the instruction the
 * int3 replaced is executed by the tracer on the thread's registers, as
 * the kernel's uprobes do for the simple cases (arch/x86/kernel/uprobes.c).
 * Allocator entry points begin with prologue instructions; on Debian 12's
 * glibc 2.36 they are `push %r12` (malloc), `test %rdi,%rdi` (free),
 * `push %r13` (calloc), `push %r15` (realloc), `mov %rsi,%rax`
 * (reallocarray) and `cmpb $0x0,disp(%rip)` (posix_memalign, memalign,
 * valloc, pvalloc), and the dynamic linker's _dl_debug_state is `ret`.
 *
 * What is emulated, and why the rest is refused:
 *   endbr64, nop           no effect but rip
 *   push r64               the prologue's register saves
 *   mov/lea r, r|imm|mem   argument shuffles and loads (no side effects
 *                          beyond the destination)
 *   cmp/test/sub/add/and/or/xor r|mem, r|imm
 *                          flags computed exactly as the CPU does
 *   ret, jmp rel           _dl_debug_state, tail-call stubs
 * Refused: anything that faults differently when emulated (string ops,
 * locked or atomic ops), changes control flow in ways that need more
 * state (call, indirect jumps, conditional branches are harmless but
 * never first), touches segment registers other than fs/gs-relative
 * loads, or uses vector registers.  A refused entry point is not probed
 * and `info probes` says why. */
#include <Zydis/Zydis.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

enum { K_NONE, K_REG, K_MEM, K_IMM };
enum { EA_NONE = -1, EA_RIP = -2 };

#define RIDX(field) ((int)(offsetof(struct user_regs_struct, field) / 8))

static int reg_index(ZydisRegister r)
{
	if (r == ZYDIS_REGISTER_RIP)
		return EA_RIP; /* it has no enclosing register */
	switch (ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64,
						 r)) {
	case ZYDIS_REGISTER_RAX: return RIDX(rax);
	case ZYDIS_REGISTER_RBX: return RIDX(rbx);
	case ZYDIS_REGISTER_RCX: return RIDX(rcx);
	case ZYDIS_REGISTER_RDX: return RIDX(rdx);
	case ZYDIS_REGISTER_RSI: return RIDX(rsi);
	case ZYDIS_REGISTER_RDI: return RIDX(rdi);
	case ZYDIS_REGISTER_RBP: return RIDX(rbp);
	case ZYDIS_REGISTER_RSP: return RIDX(rsp);
	case ZYDIS_REGISTER_R8: return RIDX(r8);
	case ZYDIS_REGISTER_R9: return RIDX(r9);
	case ZYDIS_REGISTER_R10: return RIDX(r10);
	case ZYDIS_REGISTER_R11: return RIDX(r11);
	case ZYDIS_REGISTER_R12: return RIDX(r12);
	case ZYDIS_REGISTER_R13: return RIDX(r13);
	case ZYDIS_REGISTER_R14: return RIDX(r14);
	case ZYDIS_REGISTER_R15: return RIDX(r15);
	default: return EA_NONE;
	}
}

/* 8-bit registers ah/bh/ch/dh live in bits 8-15: refuse them rather
 * than carry a shift. */
static bool is_high_byte(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_AH || r == ZYDIS_REGISTER_BH ||
	       r == ZYDIS_REGISTER_CH || r == ZYDIS_REGISTER_DH;
}

static bool operand(struct hd_emu *e, const ZydisDecodedOperand *op,
		    bool dst)
{
	uint8_t *kind = dst ? &e->dst_kind : &e->src_kind;
	int *reg = dst ? &e->dst_reg : &e->src_reg;
	switch (op->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		if (is_high_byte(op->reg.value))
			return false;
		*reg = reg_index(op->reg.value);
		*kind = K_REG;
		return *reg >= 0;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		if (e->base_reg != EA_NONE || e->dst_kind == K_MEM)
			return false; /* one memory operand at most */
		if (op->mem.type != ZYDIS_MEMOP_TYPE_MEM &&
		    op->mem.type != ZYDIS_MEMOP_TYPE_AGEN)
			return false;
		e->base_reg = op->mem.base == ZYDIS_REGISTER_NONE
				      ? EA_NONE
				      : reg_index(op->mem.base);
		e->index_reg = op->mem.index == ZYDIS_REGISTER_NONE
				       ? EA_NONE
				       : reg_index(op->mem.index);
		if ((op->mem.base != ZYDIS_REGISTER_NONE &&
		     e->base_reg == EA_NONE) ||
		    (op->mem.index != ZYDIS_REGISTER_NONE &&
		     e->index_reg < 0))
			return false;
		if (e->base_reg == EA_NONE && op->mem.base == ZYDIS_REGISTER_NONE)
			e->base_reg = -3; /* absolute */
		e->scale = op->mem.scale;
		e->disp = op->mem.disp.value;
		switch (op->mem.segment) {
		case ZYDIS_REGISTER_FS: e->seg = 1; break;
		case ZYDIS_REGISTER_GS: e->seg = 2; break;
		case ZYDIS_REGISTER_DS:
		case ZYDIS_REGISTER_SS:
		case ZYDIS_REGISTER_NONE: e->seg = 0; break;
		default: return false;
		}
		*kind = K_MEM;
		return true;
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		if (dst)
			return false;
		e->imm = op->imm.is_signed ? op->imm.value.s
					   : (int64_t)op->imm.value.u;
		*kind = K_IMM;
		return true;
	default:
		return false;
	}
}

static void refuse(struct hd_emu *e, const char *why)
{
	e->kind = HD_EMU_NONE;
	snprintf(e->text + strlen(e->text),
		 sizeof(e->text) - strlen(e->text), " (%s)", why);
}

void hd_emu_decode(struct hd_emu *e, uint64_t addr, const uint8_t *code,
		   size_t len)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisFormatter fmt;

	memset(e, 0, sizeof(*e));
	e->base_reg = e->index_reg = EA_NONE;
	e->dst_reg = e->src_reg = EA_NONE;
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64,
			 ZYDIS_STACK_WIDTH_64);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code, len, &in, ops))) {
		snprintf(e->text, sizeof(e->text), "(bad instruction)");
		return;
	}
	ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_ATT);
	ZydisFormatterFormatInstruction(&fmt, &in, ops,
					in.operand_count_visible, e->text,
					sizeof(e->text), addr, NULL);
	e->len = in.length;
	e->width = (uint8_t)(in.operand_width / 8);
	if (in.attributes & (ZYDIS_ATTRIB_HAS_LOCK | ZYDIS_ATTRIB_HAS_REP |
			     ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE))
		return refuse(e, "prefix not emulated");

	int nvis = in.operand_count_visible;
	switch (in.mnemonic) {
	case ZYDIS_MNEMONIC_ENDBR64:
	case ZYDIS_MNEMONIC_NOP:
		e->kind = HD_EMU_NOP;
		return;
	case ZYDIS_MNEMONIC_PUSH:
		if (ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
		    ops[0].size != 64 || !operand(e, &ops[0], false))
			return refuse(e, "only push of a 64-bit register");
		e->kind = HD_EMU_PUSH;
		e->width = 8;
		return;
	case ZYDIS_MNEMONIC_RET:
		if (nvis != 0)
			return refuse(e, "ret imm16");
		e->kind = HD_EMU_RET;
		return;
	case ZYDIS_MNEMONIC_JMP:
		if (!(in.attributes & ZYDIS_ATTRIB_IS_RELATIVE) ||
		    ops[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE)
			return refuse(e, "indirect jump");
		ZydisCalcAbsoluteAddress(&in, &ops[0], addr,
					 (ZyanU64 *)&e->target);
		e->kind = HD_EMU_JMP;
		return;
	case ZYDIS_MNEMONIC_MOV:
	case ZYDIS_MNEMONIC_LEA:
		if (nvis != 2 || !operand(e, &ops[0], true) ||
		    !operand(e, &ops[1], false))
			return refuse(e, "operands not emulated");
		e->kind = HD_EMU_MOV;
		e->opcode = in.mnemonic == ZYDIS_MNEMONIC_LEA;
		e->writes_dst = true;
		return;
	case ZYDIS_MNEMONIC_CMP:
	case ZYDIS_MNEMONIC_TEST:
	case ZYDIS_MNEMONIC_SUB:
	case ZYDIS_MNEMONIC_ADD:
	case ZYDIS_MNEMONIC_AND:
	case ZYDIS_MNEMONIC_OR:
	case ZYDIS_MNEMONIC_XOR:
		if (nvis != 2 || !operand(e, &ops[0], true) ||
		    !operand(e, &ops[1], false))
			return refuse(e, "operands not emulated");
		e->kind = HD_EMU_ALU;
		e->opcode = (uint16_t)in.mnemonic;
		e->writes_dst = in.mnemonic != ZYDIS_MNEMONIC_CMP &&
				in.mnemonic != ZYDIS_MNEMONIC_TEST;
		return;
	default:
		return refuse(e, "instruction not emulated");
	}
}

/* ---- execution ---- */

static uint64_t *reg_ptr(struct user_regs_struct *r, int idx)
{
	return (uint64_t *)r + idx;
}

static uint64_t mask(int width)
{
	return width >= 8 ? ~0ULL : (1ULL << (width * 8)) - 1;
}

static uint64_t effective_address(const struct hd_emu *e, uint64_t addr,
				  struct user_regs_struct *r)
{
	uint64_t ea = (uint64_t)e->disp;
	if (e->base_reg == EA_RIP)
		ea += addr + e->len;
	else if (e->base_reg >= 0)
		ea += *reg_ptr(r, e->base_reg);
	if (e->index_reg >= 0)
		ea += *reg_ptr(r, e->index_reg) * e->scale;
	if (e->seg == 1)
		ea += r->fs_base;
	else if (e->seg == 2)
		ea += r->gs_base;
	return ea;
}

static int load(const struct hd_emu *e, pid_t tid, uint64_t addr,
		struct user_regs_struct *r, int kind, int reg, uint64_t *v)
{
	switch (kind) {
	case K_REG:
		*v = *reg_ptr(r, reg) & mask(e->width);
		return 0;
	case K_IMM:
		*v = (uint64_t)e->imm & mask(e->width);
		return 0;
	case K_MEM: {
		uint64_t x = 0;
		int err = hd_mem_read_full(tid, effective_address(e, addr, r),
					   &x, e->width);
		*v = x & mask(e->width);
		return err;
	}
	}
	return -EINVAL;
}

static int store(const struct hd_emu *e, pid_t tid, uint64_t addr,
		 struct user_regs_struct *r, uint64_t v)
{
	if (e->dst_kind == K_MEM)
		return hd_mem_write(tid, effective_address(e, addr, r), &v,
				    e->width);
	uint64_t *d = reg_ptr(r, e->dst_reg);
	if (e->width == 4)
		*d = v & 0xffffffffULL; /* 32-bit writes zero-extend */
	else
		*d = (*d & ~mask(e->width)) | (v & mask(e->width));
	return 0;
}

enum { CF = 1 << 0, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7,
       OF = 1 << 11 };

static uint64_t alu(const struct hd_emu *e, uint64_t a, uint64_t b,
		    unsigned long long *flags)
{
	uint64_t m = mask(e->width), sign = 1ULL << (e->width * 8 - 1), res;
	unsigned long long f = *flags & ~(unsigned long long)(CF | PF | AF |
							      ZF | SF | OF);
	switch (e->opcode) {
	case ZYDIS_MNEMONIC_CMP:
	case ZYDIS_MNEMONIC_SUB:
		res = (a - b) & m;
		if (a < b)
			f |= CF;
		if ((a ^ b) & (a ^ res) & sign)
			f |= OF;
		if ((a ^ b ^ res) & 0x10)
			f |= AF;
		break;
	case ZYDIS_MNEMONIC_ADD:
		res = (a + b) & m;
		if (res < a)
			f |= CF;
		if (~(a ^ b) & (a ^ res) & sign)
			f |= OF;
		if ((a ^ b ^ res) & 0x10)
			f |= AF;
		break;
	case ZYDIS_MNEMONIC_OR:
		res = a | b;
		break;
	case ZYDIS_MNEMONIC_XOR:
		res = a ^ b;
		break;
	default: /* AND, TEST */
		res = a & b;
		break;
	}
	if (res == 0)
		f |= ZF;
	if (res & sign)
		f |= SF;
	if (!(__builtin_popcount((unsigned)(res & 0xff)) & 1))
		f |= PF;
	*flags = f;
	return res;
}

int hd_emu_exec(const struct hd_emu *e, pid_t tid, uint64_t addr,
		struct user_regs_struct *r)
{
	uint64_t a = 0, b = 0, v;
	int err = 0;
	switch (e->kind) {
	case HD_EMU_NONE:
		return -EINVAL;
	case HD_EMU_NOP:
		break;
	case HD_EMU_PUSH:
		v = *reg_ptr(r, e->src_reg);
		err = hd_mem_write(tid, r->rsp - 8, &v, 8);
		if (err)
			return err;
		r->rsp -= 8;
		break;
	case HD_EMU_RET:
		err = hd_mem_read_full(tid, r->rsp, &v, 8);
		if (err)
			return err;
		r->rsp += 8;
		r->rip = v;
		return 0;
	case HD_EMU_JMP:
		r->rip = e->target;
		return 0;
	case HD_EMU_MOV:
		if (e->opcode) /* lea */
			v = effective_address(e, addr, r) & mask(e->width);
		else if ((err = load(e, tid, addr, r, e->src_kind, e->src_reg,
				     &v)))
			return err;
		if ((err = store(e, tid, addr, r, v)))
			return err;
		break;
	case HD_EMU_ALU:
		if ((err = load(e, tid, addr, r, e->dst_kind, e->dst_reg, &a)) ||
		    (err = load(e, tid, addr, r, e->src_kind, e->src_reg, &b)))
			return err;
		v = alu(e, a, b, &r->eflags);
		if (e->writes_dst && (err = store(e, tid, addr, r, v)))
			return err;
		break;
	}
	r->rip = addr + e->len;
	return 0;
}
