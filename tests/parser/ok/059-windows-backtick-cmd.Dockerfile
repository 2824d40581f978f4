# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2019
RUN dir c:\ `
    && echo done
COPY testfile.txt c:\
