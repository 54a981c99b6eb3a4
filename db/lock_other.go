//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package db

import "os"

// tryLock has no flock(2) to call here: HossAgent refuses to start rather
// than run without its one-process guarantee.
func tryLock(*os.File) (bool, error) { return false, ErrLockUnsupported }
