package target

// adminIOQuirks are the quirks that prove the admin and I/O (ADM-*, IO-*) checks can fail, one field each,
// embedded in quirkSet.
type adminIOQuirks struct{}

// adminIOQuirkTable lists them, in the format of quirkTable.
var adminIOQuirkTable = []Quirk{}
