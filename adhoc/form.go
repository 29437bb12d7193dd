package adhoc

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// Limits on a submitted field, checked by Form.Validate.
const (
	// MaxFieldValues is the most values one field may carry.
	MaxFieldValues = 1000
	// MaxValueSize is the longest value in bytes.
	MaxValueSize = 64 << 10
)

// Form types of XEP-0004 §3.1.
const (
	FormTypeForm   = "form"
	FormTypeResult = "result"
	FormTypeSubmit = "submit"
)

// Form is a jabber:x:data form (XEP-0004): the form a command asks the
// requester to fill, or the result it reports.
type Form struct {
	// Type is FormTypeForm or FormTypeResult.
	// Encoders treat an empty Type as form while the command is executing and
	// as result otherwise.
	Type         string
	Title        string
	Instructions string
	Fields       []Field
}

// Field is one field of a form (XEP-0004 §3.2).
type Field struct {
	// Var names the field; fixed fields may leave it empty.
	Var string
	// Type is empty for a submitted field.
	Type     FieldType
	Label    string
	Desc     string
	Required bool
	// Values are the field's values: the default in a form, the answer in a
	// submission, the data in a result.
	Values []string
	// Options are the choices of a list-single or list-multi field.
	Options []Option
}

// Option is one choice of a list field (XEP-0004 §3.3).
type Option struct {
	Label string
	Value string
}

// FieldType is a field type of XEP-0004 §3.3.
type FieldType string

// The field types of XEP-0004 §3.3.
const (
	FieldBoolean     FieldType = "boolean"
	FieldFixed       FieldType = "fixed"
	FieldHidden      FieldType = "hidden"
	FieldJIDMulti    FieldType = "jid-multi"
	FieldJIDSingle   FieldType = "jid-single"
	FieldListMulti   FieldType = "list-multi"
	FieldListSingle  FieldType = "list-single"
	FieldTextMulti   FieldType = "text-multi"
	FieldTextPrivate FieldType = "text-private"
	FieldTextSingle  FieldType = "text-single"
)

// Multi reports whether the type takes several values: text-multi,
// jid-multi and list-multi.
func (t FieldType) Multi() bool {
	return t == FieldTextMulti || t == FieldJIDMulti || t == FieldListMulti
}

// Values are the validated values of a submitted form, by field var.
// Only the form's own fields appear; a field the requester did not submit is
// absent (defaults of the form are not filled in).
type Values map[string][]string

// Has reports whether the field was submitted with at least one value.
func (v Values) Has(name string) bool {
	return len(v[name]) > 0
}

// Get returns the field's first value, or "" when it has none.
func (v Values) Get(name string) string {
	if vals := v[name]; len(vals) > 0 {
		return vals[0]
	}
	return ""
}

// All returns every value of the field.
func (v Values) All(name string) []string {
	return v[name]
}

// Bool returns the value of a boolean field: true for "1" and "true",
// false otherwise (including when absent).
func (v Values) Bool(name string) bool {
	s := v.Get(name)
	return s == "1" || s == "true"
}

// JID returns the first value of a jid field, or the zero JID when it has
// none or the value is not a JID.
func (v Values) JID(name string) jid.JID {
	j, err := jid.Parse(v.Get(name))
	if err != nil {
		return jid.JID{}
	}
	return j
}

// JIDs returns the values of a jid field as JIDs.
// Form.Validate has checked that every value parses; a value that does not
// (in Values built by hand) is skipped.
func (v Values) JIDs(name string) []jid.JID {
	vals := v[name]
	out := make([]jid.JID, 0, len(vals))
	for _, s := range vals {
		if j, err := jid.Parse(s); err == nil {
			out = append(out, j)
		}
	}
	return out
}

// Validate checks a submission (a form of type submit, XEP-0004 §3.1)
// against the form and returns the submitted values of the form's fields.
//
// Submitted fields the form does not have are ignored.
// A required field needs a non-empty value; a field that is not multi takes
// at most one value; a boolean is 0, 1, true or false; a jid field's values
// parse as JIDs; a list field's values are among its options when it has
// options; a field has at most MaxFieldValues values of at most MaxValueSize
// bytes each, in valid UTF-8 without characters XML cannot carry.
// Values of boolean, jid and list fields are trimmed of surrounding white
// space, and an empty one counts as no value; text values are kept as sent.
//
// A failure is an [*Error] with condition bad-request and specific condition
// bad-payload (XEP-0050 §4.4), whose text names the field.
// A nil form accepts any submission and returns no values.
func (f *Form) Validate(submitted []Field) (Values, error) {
	vals := make(Values)
	if f == nil {
		return vals, nil
	}
	byVar := make(map[string]Field, len(f.Fields))
	for _, fd := range f.Fields {
		if fd.Var != "" && fd.Type != FieldFixed {
			byVar[fd.Var] = fd
		}
	}
	seen := make(map[string]bool, len(submitted))
	for _, sub := range submitted {
		fd, ok := byVar[sub.Var]
		if !ok {
			continue
		}
		if seen[sub.Var] {
			return nil, payloadError("Field %s is given more than once.", sub.Var)
		}
		seen[sub.Var] = true
		got, err := fd.check(sub.Values)
		if err != nil {
			return nil, err
		}
		if len(got) > 0 {
			vals[sub.Var] = got
		}
	}
	for _, fd := range f.Fields {
		if fd.Required && fd.Var != "" && fd.Type != FieldFixed && !hasContent(vals[fd.Var]) {
			return nil, payloadError("Field %s is required.", fd.Var)
		}
	}
	return vals, nil
}

// check validates the submitted values of one field and returns them
// normalised.
func (fd Field) check(values []string) ([]string, error) {
	if len(values) > MaxFieldValues {
		return nil, payloadError("Field %s has more than %d values.", fd.Var, MaxFieldValues)
	}
	var out []string
	for _, s := range values {
		if len(s) > MaxValueSize {
			return nil, payloadError("Field %s: a value is longer than %d bytes.", fd.Var, MaxValueSize)
		}
		if !xmlText(s) {
			return nil, payloadError("Field %s: a value contains a character that is not allowed.", fd.Var)
		}
		switch fd.Type {
		case FieldBoolean, FieldJIDSingle, FieldJIDMulti, FieldListSingle, FieldListMulti:
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
		}
		switch fd.Type {
		case FieldBoolean:
			if s != "0" && s != "1" && s != "true" && s != "false" {
				return nil, payloadError("Field %s: %q is not a boolean (use true, false, 1 or 0).", fd.Var, s)
			}
		case FieldJIDSingle, FieldJIDMulti:
			if _, err := jid.Parse(s); err != nil {
				return nil, payloadError("Field %s: %q is not a valid JID.", fd.Var, s)
			}
		case FieldListSingle, FieldListMulti:
			if len(fd.Options) > 0 && !fd.hasOption(s) {
				return nil, payloadError("Field %s: %q is not one of the options.", fd.Var, s)
			}
		}
		out = append(out, s)
	}
	if len(out) > 1 && !fd.Type.Multi() {
		return nil, payloadError("Field %s takes at most one value.", fd.Var)
	}
	return out, nil
}

func (fd Field) hasOption(s string) bool {
	for _, o := range fd.Options {
		if o.Value == s {
			return true
		}
	}
	return false
}

// hasContent reports whether one of the values is not empty.
func hasContent(values []string) bool {
	for _, s := range values {
		if s != "" {
			return true
		}
	}
	return false
}

// xmlText reports whether s is valid UTF-8 made only of characters allowed
// in XML 1.0 (§2.2 Char), so that every transport can carry it.
func xmlText(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return false
			}
		}
		if !IsXMLChar(r) {
			return false
		}
	}
	return true
}

// IsXMLChar reports whether r is a character of XML 1.0 §2.2 (Char).
// Field values must be made of them (Form.Validate); codec writes any other
// as U+FFFD.
func IsXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func payloadError(format string, args ...any) *Error {
	return &Error{
		Condition: ErrBadPayload.Condition,
		Specific:  ErrBadPayload.Specific,
		Text:      fmt.Sprintf(format, args...),
	}
}
