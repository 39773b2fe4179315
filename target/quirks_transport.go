package target

// transportQuirks are the quirks that prove the transport (TCP-*) checks can fail, one field each,
// embedded in quirkSet.
type transportQuirks struct{}

// transportQuirkTable lists them, in the format of quirkTable.
var transportQuirkTable = []Quirk{}
