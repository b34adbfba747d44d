// Package cli holds dockplan's cobra commands, one file each: flags become
// an options struct, the options go to the packages that do the work, and
// the result goes to a renderer. Exit codes live in exitcode.go.
//
// Commands are thin: cli must not decode HCL, talk to Docker or format plans
// itself. Both flag spellings work, -name as Terraform users type it and
// --name as cobra users do (see normalizeArgs).
package cli
