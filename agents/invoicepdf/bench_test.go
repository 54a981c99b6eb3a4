package invoicepdf

import "testing"

func BenchmarkInvoicePDF(b *testing.B) {
	r, d := New(), sampleDoc()
	for b.Loop() {
		if _, err := r.InvoicePDF(d); err != nil {
			b.Fatal(err)
		}
	}
}
