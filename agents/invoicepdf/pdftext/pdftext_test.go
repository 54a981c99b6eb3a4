package pdftext

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"reflect"
	"testing"
)

// A content stream's text operators, with the escapes and forms a PDF
// string may take.
func TestShownStrings(t *testing.T) {
	content := []byte(`BT /F1 9 Tf 10 20 Td (plain)Tj ET
% a comment (not shown) Tj
BT (esc \( \) \\ \n\101\60x \
joined (nested (deep)) end) Tj ET
q 0 g BT [(Kern) -250 (ed) 12 (!)] TJ ET Q
BT <48656C6C6F> Tj (next line) ' 1 2 (quoted) " ET
(not shown) Td 1 0 0 RG
BT (\200 \351t\351) Tj ET`)
	got, err := shownStrings(content)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"plain", "esc ( ) \\ \nA0x joined (nested (deep)) end", "Kerned!", "Hello", "next line", "quoted", "€ été"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func pdfWith(streams ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.3\n")
	for i, s := range streams {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(s)
		w.Close()
		fmt.Fprintf(&b, "%d 0 obj\n<</Filter /FlateDecode /Length %d>>\nstream\n", 3+2*i, z.Len())
		b.Write(z.Bytes())
		b.WriteString("\nendstream\nendobj\n")
	}
	fmt.Fprintf(&b, "9 0 obj\n<</Length 13>>\nstream\n(raw page) Tj\nendstream\nendobj\n%%%%EOF\n")
	return b.Bytes()
}

// Pages are read in order, compressed or not; a compressed stream holding
// the bytes of a stream header is not mistaken for one.
func TestTextReadsStreamsInOrder(t *testing.T) {
	got, err := Text(pdfWith([]byte("BT (one) Tj ET"), []byte("(two)Tj\n4 0 obj\n<</Length 1>>\nstream\n(fake)Tj")))
	if err != nil {
		t.Fatal(err)
	}
	if got != "one\ntwo\nfake\nraw page" {
		// "fake" is inside the second stream's content: shown as a string there.
		t.Errorf("got %q", got)
	}
}

func TestTextErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"not a pdf":    []byte("hello"),
		"no stream":    []byte("%PDF-1.3\n%%EOF\n"),
		"bad zlib":     []byte("%PDF-1.3\n3 0 obj\n<</Filter /FlateDecode /Length 5>>\nstream\nxxxxx\nendstream\n"),
		"short":        []byte("%PDF-1.3\n3 0 obj\n<</Length 500>>\nstream\nxxxxx\nendstream\n"),
		"wrong length": []byte("%PDF-1.3\n3 0 obj\n<</Length 2>>\nstream\nxxxxx\nendstream\n"),
		"open string":  []byte("%PDF-1.3\n3 0 obj\n<</Length 5>>\nstream\n(abcd\nendstream\n"),
		"open hex":     []byte("%PDF-1.3\n3 0 obj\n<</Length 5>>\nstream\n<abcd\nendstream\n"),
	} {
		if _, err := Text(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDecode1252(t *testing.T) {
	if got := Decode1252("\x80\x81\x9f\xa0\xe9\xff A"); got != "€?Ÿ\u00a0éÿ A" {
		t.Errorf("got %q", got)
	}
}

func FuzzText(f *testing.F) {
	f.Add(pdfWith([]byte("BT (one) Tj ET")))
	f.Add([]byte("%PDF-1.3\n3 0 obj\n<</Length 3>>\nstream\n(\\7\nendstream\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = Text(in) // must not panic
	})
}
