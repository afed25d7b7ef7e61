package sessionio

// TenValues are the ten basic values of the codec's tests ("count" and nine
// others), for the external benchmarks.
var TenValues = tenValues

// Clustered reports whether the manager relays to other nodes.
func (m *Manager) Clustered() bool { return m.clustered.Load() }
