# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
ENV APP_HOME=C:\app `
    LOG_DIR=C:\logs
WORKDIR C:\app
COPY app\ C:\app\
RUN Invoke-WebRequest -Uri https://example.com/tool.zip -OutFile tool.zip ; `
    Expand-Archive tool.zip -DestinationPath C:\tool ; `
    Remove-Item tool.zip
RUN New-Item -ItemType Directory -Path $env:LOG_DIR
EXPOSE 80
CMD ["powershell", "-File", "C:\\app\\start.ps1"]
