// Package protocols holds follow-up protocols and grading scales as data, and computes schedules.
package protocols
