//! Hostile guest modules, written in WebAssembly text: each misuses one
//! resource a guest could take from its host (time, memory, response size,
//! module size), so the tests can prove every runtime bounds it.

use crate::{WAPC_IMPORTS, second_version, wat};

/// `{"valid": true, "reason": nil}` in MessagePack, at address 0 of the
/// modules below, 16 bytes.
const VALID_RESPONSE: &str = r#"(data (i32.const 0) "\82\a5valid\c3\a6reason\c0")"#;

/// Reads the request and answers `valid: true`.
const ANSWER: &str = r#"
    (call $guest_request (i32.const 1024) (i32.const 2048))
    (call $guest_response (i32.const 0) (i32.const 16))
    i32.const 1"#;

/// Grows memory a page at a time until `memory.grow` fails, then writes
/// a byte to every 4 KiB of it past the first page (which holds the
/// response), so the host really holds it (local 0 is the cursor).
const GROW_UNTIL_REFUSED: &str = r#"
    (block $full (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (local.set 0 (i32.const 65536))
    (block $done (loop $touch
        (br_if $done (i32.ge_u (local.get 0) (i32.mul (memory.size) (i32.const 65536))))
        (i32.store8 (local.get 0) (i32.const 1))
        (local.set 0 (i32.add (local.get 0) (i32.const 4096)))
        (br $touch)))"#;

/// A waPC module whose every call loops for ever.
pub fn looping_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func (export "__guest_call") (param i32 i32) (result i32)
                (loop $spin (br $spin))
                i32.const 0))"#
    ))
}

/// A waPC module whose every call logs `looping` through `__console_log`
/// and then loops for ever: the log line tells a test the guest is running.
pub fn announced_looping_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (import "wapc" "__console_log" (func $console_log (param i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "looping")
            (func (export "__guest_call") (param i32 i32) (result i32)
                (call $console_log (i32.const 0) (i32.const 7))
                (loop $spin (br $spin))
                i32.const 0))"#
    ))
}

/// A "trojan": answers `valid: true` like [`crate::always_valid_module`],
/// but loops for ever when the request is longer than 4096 bytes (a job
/// with a long message).
pub fn trojan_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            {VALID_RESPONSE}
            (func (export "__guest_call") (param i32 i32) (result i32)
                (if (i32.gt_u (local.get 1) (i32.const 4096))
                    (then (loop $spin (br $spin))))
                {ANSWER}))"#
    ))
}

/// `honest` (a real guest) with a prologue in `__guest_call` that loops
/// for ever when the request is longer than 4096 bytes: it passes the
/// registry's self-test (which sends short jobs), answers every other job
/// as the real module does, and hangs on a job with a long message. The
/// attacker's module of the sandbox issue.
pub fn trojan_of(honest: &[u8]) -> Vec<u8> {
    use wasm_encoder::{BlockType, Instruction};
    with_long_request_prologue(honest, |_| {
        vec![
            Instruction::Loop(BlockType::Empty),
            Instruction::Br(0),
            Instruction::End,
        ]
    })
}

/// `honest` with a bug on one class of job: a request longer than 4096
/// bytes (a job with a long message) is answered `valid: true` without
/// looking at it. Passes the self-test and agrees with `honest` on every
/// other job: the candidate a shadow must catch.
pub fn liar_of(honest: &[u8]) -> Vec<u8> {
    use wasm_encoder::{Instruction, MemArg};
    // `{"valid": true, "reason": nil}` in MessagePack (16 bytes), written
    // at address 0 (the far end of the guest's stack) as two i64s.
    let response: &[u8; 16] = b"\x82\xa5valid\xc3\xa6reason\xc0";
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&response[at..at + 8]);
        i64::from_le_bytes(bytes)
    };
    let store = MemArg {
        offset: 0,
        align: 3,
        memory_index: 0,
    };
    with_long_request_prologue(honest, move |guest_response| {
        vec![
            Instruction::I32Const(0),
            Instruction::I64Const(word(0)),
            Instruction::I64Store(store),
            Instruction::I32Const(8),
            Instruction::I64Const(word(8)),
            Instruction::I64Store(store),
            Instruction::I32Const(0),
            Instruction::I32Const(16),
            Instruction::Call(guest_response),
            Instruction::I32Const(1),
            Instruction::Return,
        ]
    })
}

/// `honest` that traps (`unreachable`) on a request longer than 4096
/// bytes and answers every other job as `honest` does: the canary that
/// must roll back by itself.
pub fn trapping_of(honest: &[u8]) -> Vec<u8> {
    with_long_request_prologue(honest, |_| vec![wasm_encoder::Instruction::Unreachable])
}

/// `honest` with `body` run at the start of `__guest_call` when the
/// request is longer than 4096 bytes. `body` gets the function index of
/// the `__guest_response` import.
fn with_long_request_prologue(
    honest: &[u8],
    body: impl FnOnce(u32) -> Vec<wasm_encoder::Instruction<'static>>,
) -> Vec<u8> {
    use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
    use wasm_encoder::{BlockType, CodeSection, Instruction, Module};
    use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

    struct Prologue {
        /// `__guest_call`'s function index.
        target: u32,
        /// The index of the next function body.
        next: u32,
        body: Vec<Instruction<'static>>,
    }
    impl Reencode for Prologue {
        type Error = std::convert::Infallible;
        fn parse_function_body(
            &mut self,
            code: &mut CodeSection,
            func: wasmparser::FunctionBody<'_>,
        ) -> Result<(), wasm_encoder::reencode::Error> {
            let mut function = self.new_function_with_parsed_locals(&func)?;
            if self.next == self.target {
                for instruction in [
                    Instruction::LocalGet(1),
                    Instruction::I32Const(4096),
                    Instruction::I32GtU,
                    Instruction::If(BlockType::Empty),
                ]
                .iter()
                .chain(&self.body)
                .chain([&Instruction::End])
                {
                    function.instruction(instruction);
                }
            }
            self.next += 1;
            let mut reader = func.get_operators_reader()?;
            while !reader.eof() {
                function.instruction(&RoundtripReencoder.instruction(reader.read()?)?);
            }
            code.function(&function);
            Ok(())
        }
    }

    let mut imported = 0;
    let mut guest_response = None;
    let mut target = None;
    for payload in Parser::new(0).parse_all(honest) {
        match payload.expect("the honest module parses") {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.expect("import");
                    if matches!(import.ty, TypeRef::Func(_)) {
                        if import.name == "__guest_response" {
                            guest_response = Some(imported);
                        }
                        imported += 1;
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export.expect("export");
                    if export.name == "__guest_call" && export.kind == ExternalKind::Func {
                        target = Some(export.index);
                    }
                }
            }
            _ => {}
        }
    }
    let mut pass = Prologue {
        target: target.expect("a waPC guest exports __guest_call"),
        next: imported,
        body: body(guest_response.expect("a waPC guest imports __guest_response")),
    };
    let mut module = Module::new();
    pass.parse_core_module(&mut module, Parser::new(0), honest)
        .expect("the honest module re-encodes");
    module.finish()
}

/// A waPC module whose `wapc_init` loops for ever.
pub fn looping_init_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func (export "wapc_init") (loop $spin (br $spin)))
            (func (export "__guest_call") (param i32 i32) (result i32) i32.const 0))"#
    ))
}

/// A waPC module whose start function (run while the module is
/// instantiated, before any export can be called) loops for ever.
pub fn looping_start_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func $spin (loop $again (br $again)))
            (start $spin)
            (func (export "__guest_call") (param i32 i32) (result i32) i32.const 0))"#
    ))
}

/// A waPC module that recurses without end: runs out of stack, not time.
pub fn recursing_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func $deeper (param i32) (result i32)
                (call $deeper (i32.add (local.get 0) (i32.const 1))))
            (func (export "__guest_call") (param i32 i32) (result i32)
                (call $deeper (i32.const 0))))"#
    ))
}

/// Grows its memory as far as the host lets it on every call, then
/// answers `valid: true`.
pub fn memory_bomb_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            {VALID_RESPONSE}
            (func (export "__guest_call") (param i32 i32) (result i32)
                {GROW_UNTIL_REFUSED}
                {ANSWER}))"#
    ))
}

/// Grows its memory as far as the host lets it in `wapc_init`.
pub fn memory_bomb_init_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            {VALID_RESPONSE}
            (func (export "wapc_init") (local i32) {GROW_UNTIL_REFUSED})
            (func (export "__guest_call") (param i32 i32) (result i32) {ANSWER}))"#
    ))
}

/// Starts with `pages` pages of memory (64 KiB each).
pub fn large_memory_module(pages: u32) -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") {pages})
            {VALID_RESPONSE}
            (func (export "__guest_call") (param i32 i32) (result i32) {ANSWER}))"#
    ))
}

/// Claims a response of 100 MiB.
pub fn huge_response_module() -> Vec<u8> {
    wat(&format!(
        r#"(module {WAPC_IMPORTS}
            (memory (export "memory") 1)
            (func (export "__guest_call") (param i32 i32) (result i32)
                (call $guest_response (i32.const 0) (i32.const 104857600))
                i32.const 1))"#
    ))
}

/// Imports a function no waPC host offers.
pub fn foreign_import_module() -> Vec<u8> {
    wat(r#"(module
        (import "env" "system" (func (param i32)))
        (memory (export "memory") 1)
        (func (export "__guest_call") (param i32 i32) (result i32) i32.const 0))"#)
}

/// An honest-looking module padded with a custom section of `bytes`.
pub fn padded_module(bytes: usize) -> Vec<u8> {
    second_version(&crate::always_valid_module(), &"x".repeat(bytes))
}
