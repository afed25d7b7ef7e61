package sessionio

// holds reports whether the handle already has the values of store version
// v of key, or newer ones. A version names one content (every Update increments
// it), so a reload that finds the version the handle holds has nothing to
// decode: the common case, as every incoming socket packet reloads.
func (s *Session) holds(key string, v uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.key == key && s.values != nil && s.version >= v
}
