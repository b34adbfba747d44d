// Package hclspec owns the dockplan configuration language: the HCL schema of
// *.dockplan.hcl files, decoding them into Go types, input variables and their
// sources, locals, the function library, and diagnostics that carry the exact
// source range of every problem.
//
// Decoding happens in two phases, as in Terraform. Everything that depends
// only on variables, locals and functions is evaluated here. Attributes that
// refer to container.* values (a placed host, a published port) are kept as
// expressions next to a value in which those parts are unknown; the planner
// and the applier evaluate them again once the values exist. Sensitivity
// travels through all of this as the go-cty mark [Sensitive].
//
// hclspec does no I/O beyond reading the configuration directory, variable
// files and file() arguments. It must not talk to Docker, read the state, or
// render diagnostics for humans (package render does that).
package hclspec
