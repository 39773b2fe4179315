package target

// fabricsQuirks are the quirks that prove the fabrics and discovery (FAB-*, DISC-*) checks can fail, one field each,
// embedded in quirkSet.
type fabricsQuirks struct{}

// fabricsQuirkTable lists them, in the format of quirkTable.
var fabricsQuirkTable = []Quirk{}
