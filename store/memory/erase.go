package memory

import (
	"bytes"
	"reflect"
	"strings"
	"unsafe"

	"github.com/google/uuid"
)

// renamer replaces one user's id by a pseudonym everywhere in a value:
// in strings and byte slices (the id's text form), in uuid.UUID values,
// in map keys (the entry moves to the renamed key), through pointers,
// interfaces, slices, arrays and struct fields, unexported ones included.
// It is how the memory store keeps what the law makes it keep (ledger
// accounts and transactions, rollups, payouts) under a pseudonym without
// a hand-written rewrite per record type, so that a record type added
// later is covered too. With drop set, map entries whose key names the
// user are deleted instead of moved.
type renamer struct {
	from, to         uuid.UUID
	fromText, toText string
	drop             bool
	seen             map[unsafe.Pointer]bool
}

func newRenamer(from, to uuid.UUID, drop bool) *renamer {
	return &renamer{from: from, to: to, fromText: from.String(), toText: to.String(), drop: drop, seen: map[unsafe.Pointer]bool{}}
}

var uuidType = reflect.TypeOf(uuid.UUID{})

// settable returns v made settable when it is addressable, even behind
// unexported fields.
func settable(v reflect.Value) reflect.Value {
	if v.CanSet() || !v.CanAddr() {
		return v
	}
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

// walk renames inside v (which must be settable, or hold nothing to
// rename) and reports whether it changed anything.
func (r *renamer) walk(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); strings.Contains(s, r.fromText) {
			v.SetString(strings.ReplaceAll(s, r.fromText, r.toText))
			return true
		}
	case reflect.Array:
		if v.Type() == uuidType {
			if uuid.UUID(v.Interface().(uuid.UUID)) == r.from {
				v.Set(reflect.ValueOf(r.to))
				return true
			}
			return false
		}
		changed := false
		for i := range v.Len() {
			changed = r.walk(settable(v.Index(i))) || changed
		}
		return changed
	case reflect.Slice:
		if v.IsNil() {
			return false
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if b := v.Bytes(); bytes.Contains(b, []byte(r.fromText)) {
				v.SetBytes(bytes.ReplaceAll(b, []byte(r.fromText), []byte(r.toText)))
				return true
			}
			return false
		}
		changed := false
		for i := range v.Len() {
			changed = r.walk(settable(v.Index(i))) || changed
		}
		return changed
	case reflect.Pointer:
		if v.IsNil() || r.seen[v.UnsafePointer()] {
			return false
		}
		r.seen[v.UnsafePointer()] = true
		return r.walk(settable(v.Elem()))
	case reflect.Interface:
		if v.IsNil() {
			return false
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		if r.walk(c) {
			v.Set(c)
			return true
		}
	case reflect.Struct:
		changed := false
		for i := range v.NumField() {
			changed = r.walk(settable(v.Field(i))) || changed
		}
		return changed
	case reflect.Map:
		if v.IsNil() {
			return false
		}
		changed := false
		iter := v.MapRange()
		type move struct{ oldKey, newKey, val reflect.Value }
		var moves []move
		for iter.Next() {
			k := reflect.New(v.Type().Key()).Elem()
			k.Set(iter.Key())
			val := reflect.New(v.Type().Elem()).Elem()
			val.Set(iter.Value())
			keyChanged := r.walk(k)
			valChanged := r.walk(val)
			if keyChanged || valChanged {
				moves = append(moves, move{iter.Key(), k, val})
			}
			changed = changed || keyChanged || valChanged
		}
		for _, m := range moves {
			v.SetMapIndex(m.oldKey, reflect.Value{})
			if !r.drop || m.newKey.Equal(m.oldKey) {
				v.SetMapIndex(m.newKey, m.val)
			}
		}
		return changed
	}
	return false
}

// renameAll renames the user in every value ptrs point to.
func renameAll(from, to uuid.UUID, drop bool, ptrs ...any) {
	r := newRenamer(from, to, drop)
	for _, p := range ptrs {
		r.walk(reflect.ValueOf(p).Elem())
	}
}
