package planner

// SavedPlanChecksum exposes the saved plan checksum to the fuzz test, which
// seals mutated files again to reach the checks behind the checksum.
var SavedPlanChecksum = (*SavedPlan).checksum
