package sessionio

// TenValues are the ten basic values of the codec's tests ("count" and nine
// others), for the external benchmarks.
var TenValues = tenValues
