//! Lowers a module to WebAssembly 1.0 (MVP), for the `compat` variants.
//!
//! `-C target-cpu=mvp` only governs code rustc generates for our crates:
//! the precompiled standard library keeps the toolchain's default features,
//! so the module still contains sign-extension operators, `memory.copy`,
//! `memory.fill` and reference-types encodings of `call_indirect`. wasm3
//! refuses those. This pass rewrites exactly them:
//!
//! - `i32.extend8_s` and friends become a shift-left / arithmetic-shift-right
//!   pair;
//! - `memory.copy` and `memory.fill` become calls to two appended helper
//!   functions (8-byte then 1-byte loops with `memmove`/`memset` semantics);
//! - every other instruction is re-encoded as it is, which writes the MVP
//!   encoding of `call_indirect` (a single zero byte for table 0);
//! - the `target_features` custom section, which would now lie, is dropped.
//!
//! The result is validated against the MVP feature set by the caller.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, Function, FunctionSection, Instruction, MemArg, Module, TypeSection,
    ValType,
};
use wasmparser::{Operator, Parser, Payload};

/// Rewrites `wasm` without post-MVP instructions.
pub fn lower_to_mvp(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut lowering = Lowering::scan(wasm)?;
    let mut module = Module::new();
    lowering
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| format!("re-encoding failed: {e:?}"))?;
    Ok(module.finish())
}

/// Validates `wasm` against WebAssembly 1.0 plus mutable globals.
pub fn validate_mvp(wasm: &[u8]) -> Result<(), String> {
    let features = wasmparser::WasmFeatures::WASM1 | wasmparser::WasmFeatures::MUTABLE_GLOBAL;
    wasmparser::Validator::new_with_features(features)
        .validate_all(wasm)
        .map(drop)
        .map_err(|e| e.to_string())
}

struct Lowering {
    /// Index of the appended `(i32, i32, i32) -> ()` type.
    helper_type: u32,
    /// Function indices of the appended helpers.
    memmove: u32,
    memset: u32,
}

impl Lowering {
    fn scan(wasm: &[u8]) -> Result<Lowering, String> {
        let (mut types, mut imported, mut defined) = (0u32, 0u32, 0u32);
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| e.to_string())? {
                Payload::TypeSection(s) => types = s.count(),
                Payload::ImportSection(s) => {
                    for import in s.into_imports() {
                        let import = import.map_err(|e| e.to_string())?;
                        if matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                            imported += 1;
                        }
                    }
                }
                Payload::FunctionSection(s) => defined = s.count(),
                _ => {}
            }
        }
        let first_helper = imported + defined;
        Ok(Lowering {
            helper_type: types,
            memmove: first_helper,
            memset: first_helper + 1,
        })
    }
}

const SIGNED_SHIFTS: [(u8, i64); 5] = [(8, 24), (16, 16), (8, 56), (16, 48), (32, 32)];

impl Reencode for Lowering {
    type Error = String;

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([ValType::I32; 3], []);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.helper_type);
        functions.function(self.helper_type);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        reencode::utils::parse_code_section(self, code, section)?;
        code.function(&memmove_body());
        code.function(&memset_body());
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<String>> {
        let mut function = self.new_function_with_parsed_locals(&func)?;
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let operator = reader.read()?;
            let shift = match operator {
                Operator::I32Extend8S => Some(SIGNED_SHIFTS[0]),
                Operator::I32Extend16S => Some(SIGNED_SHIFTS[1]),
                Operator::I64Extend8S => Some(SIGNED_SHIFTS[2]),
                Operator::I64Extend16S => Some(SIGNED_SHIFTS[3]),
                Operator::I64Extend32S => Some(SIGNED_SHIFTS[4]),
                _ => None,
            };
            match (operator, shift) {
                (Operator::I32Extend8S | Operator::I32Extend16S, Some((_, by))) => {
                    function.instruction(&Instruction::I32Const(by as i32));
                    function.instruction(&Instruction::I32Shl);
                    function.instruction(&Instruction::I32Const(by as i32));
                    function.instruction(&Instruction::I32ShrS);
                }
                (_, Some((_, by))) => {
                    function.instruction(&Instruction::I64Const(by));
                    function.instruction(&Instruction::I64Shl);
                    function.instruction(&Instruction::I64Const(by));
                    function.instruction(&Instruction::I64ShrS);
                }
                (
                    Operator::MemoryCopy {
                        dst_mem: 0,
                        src_mem: 0,
                    },
                    None,
                ) => {
                    function.instruction(&Instruction::Call(self.memmove));
                }
                (Operator::MemoryFill { mem: 0 }, None) => {
                    function.instruction(&Instruction::Call(self.memset));
                }
                (operator, None) => {
                    function.instruction(&self.instruction(operator)?);
                }
            }
        }
        code.function(&function);
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        if section.name() == "target_features" {
            return Ok(());
        }
        reencode::utils::parse_custom_section(self, module, section)
    }
}

const BYTE: MemArg = MemArg {
    offset: 0,
    align: 0,
    memory_index: 0,
};

/// Unaligned 8-byte access (alignment is only a hint in wasm).
const WORD: MemArg = MemArg {
    offset: 0,
    align: 0,
    memory_index: 0,
};

/// `local += by`.
fn add(f: &mut Function, local: u32, by: i32) {
    f.instruction(&Instruction::LocalGet(local));
    f.instruction(&Instruction::I32Const(by));
    f.instruction(&Instruction::I32Add);
    f.instruction(&Instruction::LocalSet(local));
}

/// `block { loop { br_if 1 (n < min); body; br 0 } }` over the local `n`.
fn chunk_loop(f: &mut Function, n: u32, min: i32, body: impl FnOnce(&mut Function)) {
    f.instruction(&Instruction::Block(BlockType::Empty));
    f.instruction(&Instruction::Loop(BlockType::Empty));
    f.instruction(&Instruction::LocalGet(n));
    f.instruction(&Instruction::I32Const(min));
    f.instruction(&Instruction::I32LtU);
    f.instruction(&Instruction::BrIf(1));
    body(f);
    f.instruction(&Instruction::Br(0));
    f.instruction(&Instruction::End);
    f.instruction(&Instruction::End);
}

/// `memmove(dst: 0, src: 1, n: 2)`: forwards when `dst <= src`, backwards
/// otherwise, eight bytes at a time and then byte by byte. Each chunk is
/// loaded whole before it is stored, so overlapping regions copy as
/// `memory.copy` does.
fn memmove_body() -> Function {
    let (dst, src, n) = (0, 1, 2);
    let mut f = Function::new([]);
    f.instruction(&Instruction::LocalGet(dst));
    f.instruction(&Instruction::LocalGet(src));
    f.instruction(&Instruction::I32LeU);
    f.instruction(&Instruction::If(BlockType::Empty));
    for (width, load, store) in [
        (8, Instruction::I64Load(WORD), Instruction::I64Store(WORD)),
        (
            1,
            Instruction::I32Load8U(BYTE),
            Instruction::I32Store8(BYTE),
        ),
    ] {
        chunk_loop(&mut f, n, width, |f| {
            f.instruction(&Instruction::LocalGet(dst));
            f.instruction(&Instruction::LocalGet(src));
            f.instruction(&load);
            f.instruction(&store);
            add(f, dst, width);
            add(f, src, width);
            add(f, n, -width);
        });
    }
    f.instruction(&Instruction::Else);
    for (width, load, store) in [
        (8, Instruction::I64Load(WORD), Instruction::I64Store(WORD)),
        (
            1,
            Instruction::I32Load8U(BYTE),
            Instruction::I32Store8(BYTE),
        ),
    ] {
        chunk_loop(&mut f, n, width, |f| {
            add(f, n, -width);
            f.instruction(&Instruction::LocalGet(dst));
            f.instruction(&Instruction::LocalGet(n));
            f.instruction(&Instruction::I32Add);
            f.instruction(&Instruction::LocalGet(src));
            f.instruction(&Instruction::LocalGet(n));
            f.instruction(&Instruction::I32Add);
            f.instruction(&load);
            f.instruction(&store);
        });
    }
    f.instruction(&Instruction::End);
    f.instruction(&Instruction::End);
    f
}

/// `memset(dst: 0, value: 1, n: 2)`: eight bytes at a time (the byte
/// repeated across an i64), then byte by byte.
fn memset_body() -> Function {
    let (dst, value, n, pattern) = (0, 1, 2, 3);
    let mut f = Function::new([(1, ValType::I64)]);
    f.instruction(&Instruction::LocalGet(value));
    f.instruction(&Instruction::I64ExtendI32U);
    f.instruction(&Instruction::I64Const(0xff));
    f.instruction(&Instruction::I64And);
    f.instruction(&Instruction::I64Const(0x0101_0101_0101_0101));
    f.instruction(&Instruction::I64Mul);
    f.instruction(&Instruction::LocalSet(pattern));
    chunk_loop(&mut f, n, 8, |f| {
        f.instruction(&Instruction::LocalGet(dst));
        f.instruction(&Instruction::LocalGet(pattern));
        f.instruction(&Instruction::I64Store(WORD));
        add(f, dst, 8);
        add(f, n, -8);
    });
    chunk_loop(&mut f, n, 1, |f| {
        f.instruction(&Instruction::LocalGet(dst));
        f.instruction(&Instruction::LocalGet(value));
        f.instruction(&Instruction::I32Store8(BYTE));
        add(f, dst, 1);
        add(f, n, -1);
    });
    f.instruction(&Instruction::End);
    f
}
