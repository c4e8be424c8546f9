package loadgen

// WithoutLoops returns cfg set to run every closed-model user as a
// goroutine on the blocking client, so tests cover both drivers.
func WithoutLoops(cfg Config) Config {
	cfg.noLoops = true
	return cfg
}

// UsesLoops reports whether Run would put cfg's closed-model users on
// event loops.
func UsesLoops(cfg Config) bool {
	if err := cfg.Validate(); err != nil {
		return false
	}
	e := &engine{cfg: cfg, sc: cfg.Scenario}
	return len(cfg.Rate) == 0 && e.loopable()
}

// WithLoops returns cfg set to run its closed-model users on n event
// loops, whatever the number of cores.
func WithLoops(cfg Config, n int) Config {
	cfg.loops = n
	return cfg
}
