// Package render turns dockplan's structured results into what people and
// programs read: human text (with colour only on a terminal), JSON with a
// format version, and Markdown. Today it renders configuration diagnostics;
// plans are rendered from the same structure that their JSON exposes.
//
// render does no I/O beyond the writer it is given, and never prints a value
// marked sensitive.
package render
