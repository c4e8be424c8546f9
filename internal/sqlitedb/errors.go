package sqlitedb

import (
	"errors"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// Code is SQLite's primary result code, so that callers can classify an
// error (a full disk, a corrupt file, a lock) without importing the driver.
type Code int

// The primary result codes Lode tells apart (sqlite3.h).
const (
	CodeOK         Code = 0
	CodeError      Code = 1
	CodeInternal   Code = 2
	CodePerm       Code = 3
	CodeAbort      Code = 4
	CodeBusy       Code = 5
	CodeLocked     Code = 6
	CodeNoMem      Code = 7
	CodeReadOnly   Code = 8
	CodeInterrupt  Code = 9
	CodeIOErr      Code = 10
	CodeCorrupt    Code = 11
	CodeNotFound   Code = 12
	CodeFull       Code = 13
	CodeCantOpen   Code = 14
	CodeProtocol   Code = 15
	CodeSchema     Code = 17
	CodeTooBig     Code = 18
	CodeConstraint Code = 19
	CodeMismatch   Code = 20
	CodeMisuse     Code = 21
	CodeAuth       Code = 23
	CodeRange      Code = 25
	CodeNotADB     Code = 26
)

// ErrorCode returns SQLite's primary result code of err and the driver's
// own message for it (without the context Lode's wrapping adds, such as
// "commit: "), or (CodeOK, "") when err does not come from SQLite.
func ErrorCode(err error) (Code, string) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return Code(se.Code), se.Error()
	}
	var be *BusyError
	if errors.As(err, &be) {
		// A lock failure whose driver error database/sql wrapped as text.
		return CodeBusy, "database is locked"
	}
	return CodeOK, ""
}

// NotFoundError is a table or row that a write names but the database
// does not have. Msg is Datasette's wording ("Table not found: docs").
type NotFoundError struct{ Msg string }

func (e *NotFoundError) Error() string { return e.Msg }

// InvalidError is a write that does not fit its table: unknown columns,
// missing or null primary keys, a bad column name. Msgs are Datasette's
// messages, one per problem.
type InvalidError struct{ Msgs []string }

func (e *InvalidError) Error() string { return strings.Join(e.Msgs, "; ") }

func invalid(msgs ...string) error { return &InvalidError{Msgs: msgs} }
