//! Deadline checks and a memory maximum written into a module, for wasm3,
//! which can neither be interrupted nor told a memory limit from outside.
//!
//! The pass rewrites the module once, at compile time:
//!
//! - a mutable `i32` global counts down at every function entry and every
//!   loop iteration (the only ways code runs for long); when it reaches
//!   zero the guest calls the imported `hotwasm.deadline`, which answers
//!   the next count, or traps when the call's deadline has passed. So an
//!   endless loop reaches the host every [`CHECK_EVERY`] iterations;
//! - the memory's maximum becomes the smaller of its own and the cap, so
//!   `memory.grow` past the cap returns -1 as the spec says; a module that
//!   starts above the cap is refused.
//!
//! Hand-written on `wasm-encoder`'s re-encoder (as the MVP lowering of the
//! guest builds is) because the maintained metering crates count fuel,
//! which wasm3 cannot refill during a call, and none checks a clock.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, EntityType, GlobalSection, GlobalType, ImportSection,
    Instruction, Module, SectionId, TypeSection, ValType,
};
use wasmparser::{Operator, Parser, Payload, TypeRef};

/// Module and name of the imported check.
pub const IMPORT: (&str, &str) = ("hotwasm", "deadline");

/// Function entries and loop iterations between two checks of the clock.
pub const CHECK_EVERY: i32 = 10_000;

/// Bytes per WebAssembly page.
const PAGE: u64 = 65_536;

/// Rewrites `wasm` with its memory capped at `max_memory_bytes` and, when
/// `checks`, with deadline checks.
///
/// # Errors
///
/// A message when the module cannot be parsed or starts with more memory
/// than the cap.
pub fn instrument(wasm: &[u8], max_memory_bytes: usize, checks: bool) -> Result<Vec<u8>, String> {
    let mut pass = Instrument::scan(wasm, max_memory_bytes)?;
    pass.checks = checks;
    let mut module = Module::new();
    pass.parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            reencode::Error::UserError(message) => message,
            other => format!("cannot instrument the module: {other:?}"),
        })?;
    Ok(module.finish())
}

struct Instrument {
    /// Index of the appended `() -> i32` type.
    check_type: u32,
    /// Functions imported by the original module: the check is imported
    /// after them, so defined functions move up by one.
    imported_functions: u32,
    /// Index of the appended countdown global.
    counter: u32,
    /// The cap, in pages.
    max_pages: u64,
    /// Whether to write the countdown into function entries and loops (the
    /// import and the global are added either way: the host links them).
    checks: bool,
    /// Sections this module lacks and the pass must add.
    has_types: bool,
    has_imports: bool,
    has_globals: bool,
}

impl Instrument {
    fn scan(wasm: &[u8], max_memory_bytes: usize) -> Result<Instrument, String> {
        let mut pass = Instrument {
            check_type: 0,
            imported_functions: 0,
            counter: 0,
            max_pages: max_memory_bytes as u64 / PAGE,
            checks: true,
            has_types: false,
            has_imports: false,
            has_globals: false,
        };
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| e.to_string())? {
                Payload::TypeSection(s) => {
                    pass.has_types = true;
                    pass.check_type = s.count();
                }
                Payload::ImportSection(s) => {
                    pass.has_imports = true;
                    for import in s.into_imports() {
                        match import.map_err(|e| e.to_string())?.ty {
                            TypeRef::Func(_) => pass.imported_functions += 1,
                            TypeRef::Global(_) => pass.counter += 1,
                            _ => {}
                        }
                    }
                }
                Payload::GlobalSection(s) => {
                    pass.has_globals = true;
                    pass.counter += s.count();
                }
                // wasm3 runs the start function while it loads the module,
                // before the host can link the deadline check: it could
                // neither be bounded nor reach the host. waPC guests start
                // in `wapc_init`, which is bounded.
                Payload::StartSection { .. } => {
                    return Err("the module has a start function, which wasm3 would run \
                                unbounded while loading it (waPC guests start in wapc_init)"
                        .into());
                }
                _ => {}
            }
        }
        Ok(pass)
    }

    fn add_check_type(&self, types: &mut TypeSection) {
        types.ty().function([], [ValType::I32]);
    }

    fn add_check_import(&self, imports: &mut ImportSection) {
        imports.import(IMPORT.0, IMPORT.1, EntityType::Function(self.check_type));
    }

    fn add_counter(&self, globals: &mut GlobalSection) {
        globals.global(
            GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i32_const(CHECK_EVERY),
        );
    }

    /// `if --counter == 0 { counter = hotwasm.deadline() }`.
    fn check(&self, function: &mut wasm_encoder::Function) {
        if !self.checks {
            return;
        }
        let counter = self.counter;
        function.instruction(&Instruction::GlobalGet(counter));
        function.instruction(&Instruction::I32Const(1));
        function.instruction(&Instruction::I32Sub);
        function.instruction(&Instruction::GlobalSet(counter));
        function.instruction(&Instruction::GlobalGet(counter));
        function.instruction(&Instruction::I32Eqz);
        function.instruction(&Instruction::If(BlockType::Empty));
        function.instruction(&Instruction::Call(self.imported_functions));
        function.instruction(&Instruction::GlobalSet(counter));
        function.instruction(&Instruction::End);
    }
}

impl Reencode for Instrument {
    type Error = String;

    /// Custom sections are dropped: they carry nothing wasm3 executes, and
    /// wasm3 (0.4, as bundled by the `wasm3` crate) copies the function
    /// names of a `name` section on every load and never frees them, which
    /// leaks tens of kilobytes per instance.
    fn parse_custom_section(
        &mut self,
        _module: &mut wasm_encoder::Module,
        _section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        Ok(())
    }

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<String>> {
        Ok(if func >= self.imported_functions {
            func + 1
        } else {
            func
        })
    }

    fn memory_type(
        &mut self,
        memory: wasmparser::MemoryType,
    ) -> Result<wasm_encoder::MemoryType, reencode::Error<String>> {
        if memory.memory64 || memory.initial > self.max_pages {
            return Err(reencode::Error::UserError(format!(
                "the module starts with {} MiB of memory, over the cap of {} MiB",
                (memory.initial * PAGE) >> 20,
                (self.max_pages * PAGE) >> 20
            )));
        }
        let maximum = memory
            .maximum
            .map_or(self.max_pages, |m| m.min(self.max_pages));
        let mut memory = reencode::utils::memory_type(self, memory);
        memory.maximum = Some(maximum);
        Ok(memory)
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.add_check_type(types);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_check_import(imports);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error<String>> {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.add_counter(globals);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<String>> {
        // Sections the module lacks are added where they belong: types
        // first, imports after types, globals after memories.
        let passes = |id: SectionId| {
            after.is_none_or(|a| order(a) < order(id))
                && before.is_none_or(|b| order(b) > order(id))
        };
        if !self.has_types && passes(SectionId::Type) {
            let mut types = TypeSection::new();
            self.add_check_type(&mut types);
            module.section(&types);
            self.has_types = true;
        }
        if !self.has_imports && passes(SectionId::Import) {
            let mut imports = ImportSection::new();
            self.add_check_import(&mut imports);
            module.section(&imports);
            self.has_imports = true;
        }
        if !self.has_globals && passes(SectionId::Global) {
            let mut globals = GlobalSection::new();
            self.add_counter(&mut globals);
            module.section(&globals);
            self.has_globals = true;
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<String>> {
        let mut function = self.new_function_with_parsed_locals(&func)?;
        self.check(&mut function);
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let operator = reader.read()?;
            let is_loop = matches!(operator, Operator::Loop { .. });
            function.instruction(&self.instruction(operator)?);
            if is_loop {
                self.check(&mut function);
            }
        }
        code.function(&function);
        Ok(())
    }
}

/// A non-custom section's place in a module's binary order (which is not
/// the order of the section ids: data count comes before code).
fn order(id: SectionId) -> u8 {
    match id {
        SectionId::Custom => 0,
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(wasm: &[u8]) {
        let features = wasmparser::WasmFeatures::WASM1 | wasmparser::WasmFeatures::MUTABLE_GLOBAL;
        wasmparser::Validator::new_with_features(features)
            .validate_all(wasm)
            .unwrap_or_else(|e| panic!("instrumented module is invalid: {e}"));
    }

    #[test]
    fn instruments_a_module_with_every_section_missing() {
        let wasm = wat::parse_str(r#"(module (func (export "spin") (loop br 0)))"#).expect("wat");
        let out = instrument(&wasm, 1 << 20, true).expect("instrumented");
        validate(&out);
        let text = wasmprinter::print_bytes(&out).expect("printable");
        assert!(text.contains(r#"(import "hotwasm" "deadline""#), "{text}");
        assert!(text.contains("global.set 0"), "{text}");
    }

    #[test]
    fn shifts_calls_exports_and_elements_past_the_new_import() {
        let wasm = wat::parse_str(
            r#"(module
                (type $t (func (result i32)))
                (import "wapc" "__host_response_len" (func $len (result i32)))
                (global $g (mut i32) (i32.const 7))
                (table 1 funcref)
                (elem (i32.const 0) $two)
                (memory (export "memory") 1 2)
                (func $one (export "one") (result i32) call $two)
                (func $two (result i32) global.get $g call $len i32.add)
                (func (export "indirect") (result i32) (call_indirect (type $t) (i32.const 0))))"#,
        )
        .expect("wat");
        let out = instrument(&wasm, 4 * PAGE as usize, true).expect("instrumented");
        validate(&out);
        let text = wasmprinter::print_bytes(&out).expect("printable");
        // $len stays 0, the check is 1, $one 2, $two 3; the name section,
        // like every custom section, is dropped (see `parse_custom_section`).
        assert!(!text.contains("$one"), "{text}");
        assert!(
            text.contains(r#"(import "hotwasm" "deadline" (func (;1;)"#),
            "{text}"
        );
        assert!(text.contains("(func (;2;)"), "{text}");
        assert!(text.contains("(func (;3;)"), "{text}");
        assert!(text.contains("call 3"), "{text}");
        assert!(text.contains("call 0"), "{text}");
        assert!(text.contains(r#"(export "one" (func 2))"#), "{text}");
        assert!(text.contains("(elem (;0;) (i32.const 0) func 3)"), "{text}");
        // The counter comes after the module's own global.
        assert!(text.contains("global.set 1"), "{text}");
        assert!(text.contains("(memory (;0;) 1 2)"), "{text}");
    }

    #[test]
    fn refuses_a_start_function() {
        let wasm = wat::parse_str(r#"(module (func $s) (start $s))"#).expect("wat");
        let refused = instrument(&wasm, 1 << 20, true).expect_err("start function");
        assert!(refused.contains("start function"), "{refused}");
    }

    #[test]
    fn caps_the_memory_maximum_and_refuses_a_larger_start() {
        let grows = wat::parse_str(r#"(module (memory 1))"#).expect("wat");
        let text =
            wasmprinter::print_bytes(instrument(&grows, 8 * PAGE as usize, true).expect("capped"))
                .expect("printable");
        assert!(text.contains("(memory (;0;) 1 8)"), "{text}");
        let big = wat::parse_str(r#"(module (memory 100))"#).expect("wat");
        let refused = instrument(&big, 8 * PAGE as usize, true).expect_err("over the cap");
        assert!(refused.contains("over the cap"), "{refused}");
    }
}
